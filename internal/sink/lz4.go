package sink

import (
	"io"
	"sync"

	"github.com/pierrec/lz4/v4"
	"github.com/segmentio/kafka-go/compress"
)

// lz4Codec is kafka-go's lz4 codec with the frame the Java producer writes
// (Lz4BlockOutputStream): 64 KiB blocks instead of pierrec/lz4's 4 MiB
// default (every produce request being compressed at once held 4 MiB
// buffers, most of a replay's heap in a profile, for batches of about
// 1 MiB), and no content checksum (the record batch has its own CRC; the
// xxHash of every byte was 2% of a replay's CPU). The frames are standard
// lz4 frames either way; any consumer reads them.
type lz4Codec struct{ writers sync.Pool }

func (c *lz4Codec) Code() int8   { return int8(compress.Lz4) }
func (c *lz4Codec) Name() string { return "lz4" }

func (c *lz4Codec) NewReader(r io.Reader) io.ReadCloser { return io.NopCloser(lz4.NewReader(r)) }

func (c *lz4Codec) NewWriter(w io.Writer) io.WriteCloser {
	z, _ := c.writers.Get().(*lz4.Writer)
	if z == nil {
		z = lz4.NewWriter(w)
		// Apply cannot fail for these options.
		_ = z.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(false), lz4.ConcurrencyOption(1))
	} else {
		z.Reset(w)
	}
	return &lz4Writer{Writer: z, pool: &c.writers}
}

type lz4Writer struct {
	*lz4.Writer
	pool *sync.Pool
}

func (w *lz4Writer) Close() error {
	z := w.Writer
	if z == nil {
		return nil
	}
	w.Writer = nil
	err := z.Close()
	z.Reset(nil)
	w.pool.Put(z)
	return err
}

var installLZ4 sync.Once

// useSmallLZ4Blocks installs lz4Codec in kafka-go's codec table, the only
// way to choose the block size through kafka.Writer. It affects every
// kafka-go writer in the process, which in eventrelay is the sink's alone.
func useSmallLZ4Blocks() {
	installLZ4.Do(func() { compress.Codecs[compress.Lz4] = &lz4Codec{} })
}
