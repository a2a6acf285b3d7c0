package sockapi

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/tcp"
)

// TestTCPInfoTranslation: every field of tcp.Info (its ConnStats
// included), set to a value of its own, arrives in the TCPInfo field of
// the same name (or of its new name), except those the translation
// leaves behind on purpose; and every TCPInfo field is filled. A field
// added to tcp.Info fails this test until it is mapped or left behind.
func TestTCPInfoTranslation(t *testing.T) {
	renamed := map[string]string{"RACKLost": "Lost"}
	left := map[string]bool{"SentRecordMerges": true}

	var in tcp.Info
	in.State = tcp.Established
	v := reflect.ValueOf(&in).Elem()
	next := uint64(1)
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		for i := range v.NumField() {
			f := v.Field(i)
			switch {
			case v.Type().Field(i).Name == "State":
			case f.Kind() == reflect.Struct:
				fill(f)
			case f.CanUint():
				f.SetUint(next)
			case f.CanInt():
				f.SetInt(int64(next))
			case f.Kind() == reflect.Bool:
				f.SetBool(true)
			case f.Kind() == reflect.String:
				f.SetString("keepalive")
			default:
				t.Fatalf("tcp.Info.%s: a %s the test cannot fill", v.Type().Field(i).Name, f.Type())
			}
			next++
		}
	}
	fill(v)

	out := reflect.ValueOf(tcpInfo(in))
	used := map[string]bool{}
	for _, f := range reflect.VisibleFields(v.Type()) {
		if f.Anonymous || left[f.Name] {
			continue
		}
		name := f.Name
		if r, ok := renamed[name]; ok {
			name = r
		}
		got := out.FieldByName(name)
		require.True(t, got.IsValid(), "tcp.Info.%s has no TCPInfo field %s", f.Name, name)
		used[name] = true
		if f.Name == "State" {
			assert.Equal(t, TCPEstablished, got.Interface(), "State")
			continue
		}
		assert.EqualValues(t, v.FieldByIndex(f.Index).Interface(), got.Interface(), "tcp.Info.%s → TCPInfo.%s", f.Name, name)
	}
	for i := range out.NumField() {
		assert.True(t, used[out.Type().Field(i).Name], "TCPInfo.%s comes from no tcp.Info field", out.Type().Field(i).Name)
	}
}

// TestTCPStates: each of the core's states has netstat's name, and no
// two share one.
func TestTCPStates(t *testing.T) {
	want := map[tcp.State]string{
		tcp.Closed: "CLOSE", tcp.Listen: "LISTEN", tcp.SynSent: "SYN_SENT", tcp.SynReceived: "SYN_RECV",
		tcp.Established: "ESTABLISHED", tcp.FinWait1: "FIN_WAIT1", tcp.FinWait2: "FIN_WAIT2",
		tcp.CloseWait: "CLOSE_WAIT", tcp.Closing: "CLOSING", tcp.LastAck: "LAST_ACK", tcp.TimeWait: "TIME_WAIT",
	}
	seen := map[TCPState]bool{}
	for s := tcp.Closed; s <= tcp.TimeWait; s++ {
		got := tcpState(s)
		assert.Equal(t, want[s], got.String(), "tcp.%v", s)
		assert.False(t, seen[got], "tcp.%v: %v twice", s, got)
		seen[got] = true
	}
	assert.Equal(t, TCPState(1), TCPEstablished, "Linux's TCP_ESTABLISHED")
	assert.Equal(t, TCPState(10), TCPListen, "Linux's TCP_LISTEN")
	assert.Equal(t, "UNKNOWN", TCPState(0).String())
	assert.Equal(t, TCPState(0), tcpState(tcp.TimeWait+1))
}
