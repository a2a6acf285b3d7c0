package udp

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStreamNewsAndOutput: a datagram received is news for an owned
// endpoint and comes out of the Stream; one sent through the Stream goes
// out once the poller hears of it; a full send queue says so and the
// drain is news; a port unreachable is news and fails the next call once.
func TestStreamNewsAndOutput(t *testing.T) {
	tbl := newTable(t, Config{SendQueueDatagrams: 1})
	e := bind(t, tbl, "198.18.0.1:53")
	st := e.Stream()
	from := netip.AddrPortFrom(peer1, 4000)

	tbl.Input(0, peer1, local1, segment(from, netip.AddrPortFrom(local1, 53), []byte("unowned")))
	_, ok := tbl.NextNews()
	assert.False(t, ok, "no news without an owner")
	e.Owner = appOwner{}
	tbl.Input(0, peer1, local1, segment(from, netip.AddrPortFrom(local1, 53), []byte("query")))
	got, ok := tbl.NextNews()
	require.True(t, ok)
	assert.Same(t, e, got)
	buf := make([]byte, 64)
	for _, want := range []string{"unowned", "query"} {
		n, src, trunc, ok := st.Recv(buf)
		require.True(t, ok)
		assert.False(t, trunc)
		assert.Equal(t, want, string(buf[:n]))
		assert.Equal(t, from, src)
	}
	_, _, _, ok = st.Recv(buf)
	assert.False(t, ok)

	require.NoError(t, st.Send([]byte("answer"), from))
	assert.ErrorIs(t, st.Send([]byte("more"), from), ErrWouldBlock, "one datagram fills the queue")
	nothingOut(t, tbl, "nothing goes out before the poller hears of it")
	e.AppActivity()
	out, u := emit(t, tbl, local1)
	assert.Equal(t, from, netip.AddrPortFrom(out.Dst, u.DstPort()))
	assert.Contains(t, string(u.Payload()), "answer")
	_, ok = tbl.NextNews()
	assert.True(t, ok, "the drained queue is news for the blocked writer")
	assert.True(t, st.Fits(4))
	assert.ErrorIs(t, st.Send(make([]byte, 65508), from), ErrMessageTooLong)

	require.NoError(t, e.Connect(from))
	assert.True(t, tbl.PortUnreachable(netip.AddrPortFrom(local1, 53), from))
	assert.True(t, st.Ready())
	assert.True(t, st.Refused())
	assert.False(t, st.Refused(), "reported once")
}

// TestStreamTruncAndBuffers: a datagram longer than the buffer comes
// out cut and says so (MSG_TRUNC); SetRecvBuffer bounds the receive
// queue's bytes below the configured size, except that an empty queue
// takes one datagram over it, as Linux's; SetSendBuffer the send queue's.
func TestStreamTruncAndBuffers(t *testing.T) {
	tbl := newTable(t, Config{RecvQueueBytes: 4000})
	e := bind(t, tbl, "198.18.0.1:53")
	st := e.Stream()
	from, to := netip.AddrPortFrom(peer1, 4000), netip.AddrPortFrom(local1, 53)
	require.Equal(t, Delivered, tbl.Input(0, peer1, local1, segment(from, to, []byte("0123456789"))))
	buf := make([]byte, 4)
	n, src, trunc, ok := st.Recv(buf)
	require.True(t, ok)
	assert.Equal(t, 4, n, "the bytes copied")
	assert.True(t, trunc)
	assert.Equal(t, from, src)
	assert.Equal(t, "0123", string(buf))

	st.SetRecvBuffer(150)
	big := make([]byte, 200)
	assert.Equal(t, Delivered, tbl.Input(0, peer1, local1, segment(from, to, big)), "an empty queue takes one over the bound")
	assert.Equal(t, Dropped, tbl.Input(0, peer1, local1, segment(from, to, []byte("x"))), "then it is full")
	_, _, _, ok = st.Recv(buf)
	require.True(t, ok)
	for range 3 {
		assert.Equal(t, Delivered, tbl.Input(0, peer1, local1, segment(from, to, make([]byte, 50))))
	}
	assert.Equal(t, Dropped, tbl.Input(0, peer1, local1, segment(from, to, []byte("x"))), "150 bytes are the bound")
	st.SetRecvBuffer(1 << 30)
	for range 77 {
		assert.Equal(t, Delivered, tbl.Input(0, peer1, local1, segment(from, to, make([]byte, 50))))
	}
	assert.Equal(t, Dropped, tbl.Input(0, peer1, local1, segment(from, to, []byte("x"))), "the configured 4000 bytes bound a larger setting")

	st.SetSendBuffer(100)
	require.NoError(t, st.Send(make([]byte, 80), from))
	assert.False(t, st.Fits(30))
	assert.ErrorIs(t, st.Send(make([]byte, 30), from), ErrWouldBlock)
	assert.True(t, st.Fits(20))
}

// TestStreamTwoGoroutines: an app goroutine sends through the Stream
// while the table's owner drains, and the owner receives while the app
// reads: every datagram arrives once, whole and in order (run with
// -race, this checks the atomics).
func TestStreamTwoGoroutines(t *testing.T) {
	tbl := newTable(t, Config{SendQueueDatagrams: 16, RecvQueueDatagrams: 16})
	e := bind(t, tbl, "198.18.0.1:53")
	e.Owner = appOwner{}
	st := e.Stream()
	from := netip.AddrPortFrom(peer1, 4000)
	const n = 20000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the app
		defer wg.Done()
		buf := make([]byte, 64)
		sent, got := 0, 0
		for sent < n || got < n {
			if sent < n && st.Send([]byte(fmt.Sprint(sent)), from) == nil {
				sent++
			}
			if m, _, _, ok := st.Recv(buf); ok {
				if string(buf[:m]) != fmt.Sprint(got) {
					t.Errorf("received %q, want %d", buf[:m], got)
					return
				}
				got++
			}
		}
	}()
	out, b := 0, make([]byte, 100)
	for in := 0; in < n || out < n; { // the poller
		if in < n && tbl.Input(0, peer1, local1, segment(from, netip.AddrPortFrom(local1, 53), []byte(fmt.Sprint(in)))) == Delivered {
			in++
		}
		e.AppActivity()
		if o, ok := tbl.Output(0, b); ok {
			require.Equal(t, fmt.Sprint(out), string(b[8:o.Len]))
			out++
		}
	}
	wg.Wait()
}
