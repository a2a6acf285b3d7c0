package traceplot

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gonum.org/v1/plot/vg"
)

// TestPNGDrawsEverySeries: the file is a PNG of the size asked, and each
// series' colour appears in it.
func TestPNGDrawsEverySeries(t *testing.T) {
	var saw, flat Series
	saw.Name, flat.Name = "saw", "flat"
	for i := range 1000 {
		at := time.Duration(i) * time.Millisecond
		saw.Points = append(saw.Points, Point{at, float64(i % 100)})
		flat.Points = append(flat.Points, Point{at, 150})
	}
	path := filepath.Join(Dir(t), "trace.png")
	if err := PNG(path, Chart{Title: "test", Unit: "bytes", Series: []Series{saw, flat}}, 8*vg.Inch, 4*vg.Inch); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// 8 × 4 inches at 96 dpi.
	if b := img.Bounds(); b.Dx() != 768 || b.Dy() != 384 {
		t.Errorf("image is %v, want 768×384", b)
	}
	for i := range 2 {
		if n := count(img, palette[i]); n < 500 {
			t.Errorf("series %d: %d pixels of its colour, want a line", i, n)
		}
	}
}

// count is the number of pixels of img close to c (lines are
// anti-aliased).
func count(img image.Image, c color.RGBA) int {
	near := func(a uint32, b uint8) bool { return max(a>>8, uint32(b))-min(a>>8, uint32(b)) < 48 }
	n := 0
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if near(r, c.R) && near(g, c.G) && near(b, c.B) {
				n++
			}
		}
	}
	return n
}

// TestDirFromEnv: Dir is XDPNET_PLOT_DIR when set, created if need be.
func TestDirFromEnv(t *testing.T) {
	want := filepath.Join(t.TempDir(), "plots")
	t.Setenv("XDPNET_PLOT_DIR", want)
	if got := Dir(t); got != want {
		t.Errorf("Dir = %q, want %q", got, want)
	}
	if st, err := os.Stat(want); err != nil || !st.IsDir() {
		t.Errorf("%s not created: %v", want, err)
	}
}
