package steer_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/xdp/steer"
)

func TestParseMode(t *testing.T) {
	for s, want := range map[string]steer.Mode{
		"auto": steer.Auto, "native": steer.Native, "DRV": steer.Native, "driver": steer.Native,
		"generic": steer.Generic, "skb": steer.Generic,
	} {
		got, err := steer.ParseMode(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, got, s)
	}
	for _, m := range []steer.Mode{steer.Auto, steer.Native, steer.Generic} {
		got, err := steer.ParseMode(m.String())
		require.NoError(t, err)
		assert.Equal(t, m, got, "String and ParseMode round-trip")
	}
	_, err := steer.ParseMode("hw")
	assert.ErrorContains(t, err, `XDP mode "hw": want auto, native or generic`)
}
