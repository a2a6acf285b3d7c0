package tcp

// Dialing is the length of the list NeighbourFailed visits.
func (t *Table) Dialing() int { return len(t.dialing) }
