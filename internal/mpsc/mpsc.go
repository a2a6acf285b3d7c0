// Package mpsc is a lock-free multi-producer single-consumer queue of
// intrusive nodes: app goroutines push (one compare-and-swap), the owner
// of the queue takes everything at once (one swap) and gets it in push
// order. Nothing allocates: the node lives in what it queues, and a node
// is in the queue at most once at a time (Push reports false otherwise),
// which makes "tell the poller this connection has work" free when it is
// queued already.
package mpsc

import "sync/atomic"

// Node is the link a queued value embeds, and the value.
type Node[T any] struct {
	next   *Node[T]
	queued atomic.Bool
	// Value is what the node carries.
	Value T
}

// Queue is the queue; the zero value is empty and ready.
type Queue[T any] struct {
	head atomic.Pointer[Node[T]] // a stack, newest first
}

// Push queues n unless it is queued already, and reports whether it did.
// Any goroutine may push.
func (q *Queue[T]) Push(n *Node[T]) bool {
	if !n.queued.CompareAndSwap(false, true) {
		return false
	}
	for {
		old := q.head.Load()
		n.next = old
		if q.head.CompareAndSwap(old, n) {
			return true
		}
	}
}

// Empty reports whether nothing is queued; a hint, exact only to the
// consumer and only until the next Push.
func (q *Queue[T]) Empty() bool { return q.head.Load() == nil }

// TakeAll empties the queue and calls f for each node in push order. A
// node may be pushed again from the moment f is called for it. Only the
// consumer calls TakeAll.
func (q *Queue[T]) TakeAll(f func(*Node[T])) {
	n := q.head.Swap(nil)
	// The stack is newest first: reverse it.
	var fifo *Node[T]
	for n != nil {
		next := n.next
		n.next = fifo
		fifo = n
		n = next
	}
	for fifo != nil {
		next := fifo.next
		fifo.next = nil
		fifo.queued.Store(false)
		f(fifo)
		fifo = next
	}
}
