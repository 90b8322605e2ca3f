package sink

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// TestLZ4FrameAsJava: the sink's lz4 frames carry the frame descriptor the
// Java producer writes (version 1, independent blocks, no block or content
// checksum, 64 KiB blocks) and read back as the input, also when a pooled
// writer is used again.
func TestLZ4FrameAsJava(t *testing.T) {
	c := &lz4Codec{}
	for i, in := range [][]byte{[]byte(strings.Repeat(`{"metadata":{"eventId":"e-1"},"payload":{}}`, 5000)), []byte("x")} {
		var buf bytes.Buffer
		w := c.NewWriter(&buf)
		if _, err := w.Write(in); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		frame := buf.Bytes()
		if !bytes.HasPrefix(frame, []byte{0x04, 0x22, 0x4d, 0x18}) {
			t.Fatalf("frame %d starts % x, want the lz4 magic", i, frame[:4])
		}
		if flg, bd := frame[4], frame[5]; flg != 0x60 || bd != 0x40 {
			t.Errorf("frame %d: FLG %#02x BD %#02x, want 0x60 (version 1, independent blocks, no checksums) and 0x40 (64 KiB), as Java's Lz4BlockOutputStream", i, flg, bd)
		}
		r := c.NewReader(bytes.NewReader(frame))
		out, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(out, in) {
			t.Errorf("frame %d read back %d bytes (%v), want the %d written", i, len(out), err, len(in))
		}
	}
}
