package tcp

import "time"

// minRTTWindow is how long an RTT sample may stand as the minimum:
// Linux's tcp_min_rtt_wlen, five minutes. A windowed minimum, not the
// lowest ever seen, because a route change can lengthen the path for
// good: the lowest ever would then understate the RTT for the rest of
// the connection, and a model-based sender (BBR's, or pacing) built on
// it would underestimate the bandwidth-delay product for ever.
const minRTTWindow = 5 * time.Minute

// windowedMin is Kathleen Nichols' windowed minimum filter, as Linux's
// lib/minmax.c: the best, second best and third best samples of the
// window, each from a later part of it than the one before, so that
// when the best one ages out the next is at hand. O(1) per sample,
// three samples of memory.
type windowedMin struct {
	s  [3]minSample
	ok bool // a sample came
}

type minSample struct{ at, v time.Duration }

// get is the minimum, zero before any sample.
func (m *windowedMin) get() time.Duration { return m.s[0].v }

// update takes sample v at now (minmax_running_min).
func (m *windowedMin) update(now, v time.Duration) {
	s := minSample{now, v}
	if !m.ok || v <= m.s[0].v || now-m.s[2].at > minRTTWindow {
		// A new minimum, or nothing left in the window: start again.
		m.s, m.ok = [3]minSample{s, s, s}, true
		return
	}
	if v <= m.s[1].v {
		m.s[1], m.s[2] = s, s
	} else if v <= m.s[2].v {
		m.s[2] = s
	}
	// Age the choices (minmax_subwin_update).
	switch dt := now - m.s[0].at; {
	case dt > minRTTWindow:
		// The best is out of the window: the second and third move up,
		// twice if the second is out of it too.
		m.s[0], m.s[1], m.s[2] = m.s[1], m.s[2], s
		if now-m.s[0].at > minRTTWindow {
			m.s[0], m.s[1], m.s[2] = m.s[1], m.s[2], s
		}
	case m.s[1].at == m.s[0].at && dt > minRTTWindow/4:
		// A quarter of the window passed with no second choice: take
		// one from the second quarter.
		m.s[1], m.s[2] = s, s
	case m.s[2].at == m.s[1].at && dt > minRTTWindow/2:
		// Half of it passed with no third choice: take one from the
		// second half.
		m.s[2] = s
	}
}
