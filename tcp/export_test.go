package tcp

import "time"

// Dialing is the length of the list NeighbourFailed visits.
func (t *Table) Dialing() int { return len(t.dialing) }

// RunTimers lets the scripted tests run the timers due at now without
// taking a segment, to check the state they leave.
func (t *Table) RunTimers(now time.Duration) { t.runTimers(now) }
