package sockapi

// CapturesRunning is how many captures run on s.
func CapturesRunning(s *Stack) int {
	s.capMu.Lock()
	defer s.capMu.Unlock()
	return len(s.captures)
}
