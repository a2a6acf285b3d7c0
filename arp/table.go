package arp

import (
	"net/netip"
	"time"
)

// entry is one neighbour. Entries are reached through pointers, so the MAC
// that Resolve returns stays where it is while the table map changes, and
// an evicted entry's memory is reused for the entry that displaced it.
type entry struct {
	ip      netip.Addr
	mac     [6]byte // the neighbour's MAC; meaningless while Incomplete
	state   State
	updated time.Duration // last confirmation, or change of MAC or state

	// probes counts the requests sent in the current resolution (Incomplete)
	// or revalidation (Probe).
	probes int

	// The entry is in Cache.timers while Output has work for it at due: send
	// a request, declare failure, or release the queue.
	due   time.Duration
	index int    // position in Cache.timers, -1 when not scheduled
	seq   uint64 // order of scheduling: equal due times run first come, first served

	queue      [][]byte // copies of IPv4 packets waiting for the MAC, oldest first
	queueBytes int      // bytes in queue

	prev, next *entry // neighbours in Cache.lru or Cache.failed; static entries are in neither
}

// list is an intrusive doubly linked list of entries, oldest at head.
type list struct{ head, tail *entry }

func (l *list) pushBack(e *entry) {
	e.prev, e.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
}

func (l *list) remove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// listOf returns the eviction list that holds entries in state s: failed
// entries go first, then the least recently updated of the rest. Static
// entries are in no list, so nothing evicts them.
func (c *Cache) listOf(s State) *list {
	switch s {
	case 0, Static:
		return nil
	case Failed:
		return &c.failed
	default:
		return &c.lru
	}
}

// setState moves e to state s at now and files it as the newest entry of
// its eviction list.
func (c *Cache) setState(e *entry, s State, now time.Duration) {
	if l := c.listOf(e.state); l != nil {
		l.remove(e)
	}
	e.state, e.updated = s, now
	if l := c.listOf(s); l != nil {
		l.pushBack(e)
	}
}

// stateAt is e's state at now. Reachable entries go stale lazily: an entry
// confirmed more than ReachableTime ago is Stale without a timer firing.
func (c *Cache) stateAt(e *entry, now time.Duration) State {
	if e.state == Reachable && now-e.updated >= c.cfg.ReachableTime {
		return Stale
	}
	return e.state
}

// add inserts a new entry for ip, in no state yet, and returns it. A full
// table first evicts a victim: the oldest Failed entry, else the least
// recently updated non-static entry. Only the stack's own need (need true:
// Resolve, AddStatic) may evict an entry that is not Failed or Stale, so a
// flood of unsolicited ARP displaces no neighbour in use. add returns nil
// when there is no victim.
func (c *Cache) add(now time.Duration, ip netip.Addr, need bool) *entry {
	if len(c.table) < c.cfg.MaxEntries {
		e := &entry{ip: ip, index: -1}
		c.table[ip.As4()] = e
		return e
	}
	v := c.failed.head
	if v == nil {
		v = c.lru.head
		if v == nil || !need && c.stateAt(v, now) != Stale {
			c.stats.TableFull++
			return nil
		}
	}
	c.stats.QueueDrops += uint64(len(v.queue))
	c.remove(v)
	c.stats.Evictions++
	*v = entry{ip: ip, index: -1, queue: v.queue[:0]}
	c.table[ip.As4()] = v
	return v
}

// remove takes e out of the table, its list and the timers, and frees its
// queue.
func (c *Cache) remove(e *entry) {
	c.dropQueue(e)
	c.unschedule(e)
	if l := c.listOf(e.state); l != nil {
		l.remove(e)
	}
	delete(c.table, e.ip.As4())
}

// enqueue copies pkt into e's queue. Following RFC 1122 2.3.2.2 ("SHOULD
// save at least one (the latest) packet"), a full queue makes room by
// dropping its oldest packets; the new packet is dropped only when it cannot
// fit in MaxQueueBytes even with e's queue emptied.
func (c *Cache) enqueue(e *entry, pkt []byte) Verdict {
	if len(pkt) == 0 {
		return Queued
	}
	if c.queuedBytes-e.queueBytes+len(pkt) > c.cfg.MaxQueueBytes {
		c.stats.QueueDrops++
		return Dropped
	}
	for len(e.queue) >= c.cfg.MaxQueue || c.queuedBytes+len(pkt) > c.cfg.MaxQueueBytes {
		c.popFront(e)
		c.stats.QueueDrops++
	}
	p := make([]byte, len(pkt))
	copy(p, pkt)
	e.queue = append(e.queue, p)
	e.queueBytes += len(p)
	c.queuedBytes += len(p)
	c.stats.Queued++
	return Queued
}

// popFront removes e's oldest queued packet.
func (c *Cache) popFront(e *entry) {
	n := len(e.queue[0])
	copy(e.queue, e.queue[1:])
	e.queue[len(e.queue)-1] = nil
	e.queue = e.queue[:len(e.queue)-1]
	e.queueBytes -= n
	c.queuedBytes -= n
}

// dropQueue frees every packet queued on e and returns how many there were.
func (c *Cache) dropQueue(e *entry) int {
	n := len(e.queue)
	clear(e.queue)
	e.queue = e.queue[:0]
	c.queuedBytes -= e.queueBytes
	e.queueBytes = 0
	return n
}

// The timers are a binary min-heap of entries ordered by (due, seq).

func (c *Cache) schedule(e *entry, at time.Duration) {
	c.seq++
	e.due, e.seq = at, c.seq
	if e.index < 0 {
		e.index = len(c.timers)
		c.timers = append(c.timers, e)
	}
	c.fix(e.index)
}

func (c *Cache) unschedule(e *entry) {
	i := e.index
	if i < 0 {
		return
	}
	last := len(c.timers) - 1
	c.swap(i, last)
	c.timers[last] = nil
	c.timers = c.timers[:last]
	e.index = -1
	if i < last {
		c.fix(i)
	}
}

func (c *Cache) less(i, j int) bool {
	a, b := c.timers[i], c.timers[j]
	return a.due < b.due || a.due == b.due && a.seq < b.seq
}

func (c *Cache) swap(i, j int) {
	t := c.timers
	t[i], t[j] = t[j], t[i]
	t[i].index, t[j].index = i, j
}

// fix restores the heap order after the element at i changed.
func (c *Cache) fix(i int) {
	for i > 0 && c.less(i, (i-1)/2) {
		c.swap(i, (i-1)/2)
		i = (i - 1) / 2
	}
	for {
		m := i
		for _, k := range [2]int{2*i + 1, 2*i + 2} {
			if k < len(c.timers) && c.less(k, m) {
				m = k
			}
		}
		if m == i {
			return
		}
		c.swap(i, m)
		i = m
	}
}
