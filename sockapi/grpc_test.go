package sockapi_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/xdpnet/xdpnet/sockapi"
)

// blockService is the service name for which healthServer's Check blocks
// until the call's context ends.
const blockService = "block"

// watchN is how many statuses healthServer's Watch sends before it waits
// for the client to cancel.
const watchN = 100

// grpcWait bounds every wait of the gRPC tests on the other side.
const grpcWait = 10 * time.Second

// ended is how a server-side call ended: when it began to wait and when
// it ended, its context's error and its deadline, if it had one.
type ended struct {
	began, at   time.Time
	err         error
	deadline    time.Time
	hasDeadline bool
}

// healthServer is the stock health service with behaviour a test can
// watch from the server side: Check for blockService and Watch (after
// watchN statuses) wait for the call's context to end and report how it
// ended on ended.
type healthServer struct {
	healthpb.UnimplementedHealthServer
	started chan struct{} // a call began to wait for its context
	ended   chan ended
}

func newHealthServer() *healthServer {
	return &healthServer{started: make(chan struct{}, 1), ended: make(chan ended, 1)}
}

// wait blocks until ctx ends and reports how.
func (h *healthServer) wait(ctx context.Context) error {
	began := time.Now()
	h.started <- struct{}{}
	<-ctx.Done()
	dl, ok := ctx.Deadline()
	h.ended <- ended{began: began, at: time.Now(), err: ctx.Err(), deadline: dl, hasDeadline: ok}
	return ctx.Err()
}

func (h *healthServer) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if req.GetService() == blockService {
		return nil, h.wait(ctx)
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// Watch sends watchN statuses, alternately SERVING and NOT_SERVING, then
// waits for the client to end the stream.
func (h *healthServer) Watch(_ *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	for i := range watchN {
		if err := stream.Send(&healthpb.HealthCheckResponse{Status: watchStatus(i)}); err != nil {
			return err
		}
	}
	return h.wait(stream.Context())
}

// watchStatus is the i-th status Watch sends.
func watchStatus(i int) healthpb.HealthCheckResponse_ServingStatus {
	if i%2 == 0 {
		return healthpb.HealthCheckResponse_SERVING
	}
	return healthpb.HealthCheckResponse_NOT_SERVING
}

// serveGRPC serves a healthServer on ln until the test ends.
func serveGRPC(t *testing.T, ln net.Listener) *healthServer {
	t.Helper()
	h := newHealthServer()
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, h)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Stop()
		select {
		case err := <-served:
			assert.NoError(t, err)
		case <-time.After(grpcWait):
			t.Error("Serve did not return after Stop")
		}
	})
	return h
}

// dialGRPC is a health client on a connection that dial makes, closed
// when the test ends.
func dialGRPC(t *testing.T, addr string, dial func(ctx context.Context, addr string) (net.Conn, error)) healthpb.HealthClient {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithContextDialer(dial))
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	return healthpb.NewHealthClient(cc)
}

// stackDialer is the dialer gRPC's client uses on xdpnet.
func stackDialer(s *sockapi.Stack) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		return s.DialContext(ctx, "tcp", addr)
	}
}

// checkGRPC makes unary and server-streaming calls from c to h and shows
// that a deadline and a cancellation on the client end the call on the
// server too.
func checkGRPC(t *testing.T, c healthpb.HealthClient, h *healthServer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), grpcWait)
	defer cancel()

	// A unary call.
	resp, err := c.Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())

	// The client's deadline travels with the call (grpc-timeout): the
	// server's context has it, and ends.
	start := time.Now()
	dctx, dcancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer dcancel()
	_, err = c.Check(dctx, &healthpb.HealthCheckRequest{Service: blockService})
	assert.Equal(t, codes.DeadlineExceeded, status.Code(err), "client: %v", err)
	serverStarted(t, h)
	e := serverEnded(t, h)
	clientDeadline, _ := dctx.Deadline()
	require.True(t, e.hasDeadline, "the server's context has the client's deadline")
	// The server sets its deadline from the remaining time the client
	// sent (rounded up), when the call arrives: no earlier than the
	// client's, and later by no more than the time from the call to the
	// handler.
	assert.False(t, e.deadline.Before(clientDeadline), "server deadline %v before the client's %v", e.deadline, clientDeadline)
	assert.False(t, e.deadline.After(clientDeadline.Add(e.began.Sub(start))), "server deadline %v after the client's %v by more than the call took to arrive", e.deadline, clientDeadline)
	// The server's context ends at the deadline, not before: by the
	// server's own timer or by the client's RST_STREAM, which it sends
	// when its deadline passes. Whichever comes first sets the error; on
	// the pipe and the lab it is mostly the RST (context.Canceled): the
	// server's deadline is later than the client's by the call's time on
	// the wire, and the RST takes about as long.
	assert.False(t, e.at.Before(clientDeadline), "the server's call ended at %v, before the deadline %v", e.at, clientDeadline)
	assert.Contains(t, []error{context.DeadlineExceeded, context.Canceled}, e.err)
	t.Logf("the deadline ended the server's context with %v, %v after the client's deadline (the server's was %v after it)", e.err, e.at.Sub(clientDeadline), e.deadline.Sub(clientDeadline))

	// A cancellation on the client, while the server waits, cancels the
	// server's context.
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	go func() {
		select {
		case <-h.started:
			ccancel()
		case <-ctx.Done():
		}
	}()
	_, err = c.Check(cctx, &healthpb.HealthCheckRequest{Service: blockService})
	assert.Equal(t, codes.Canceled, status.Code(err), "client: %v", err)
	e = serverEnded(t, h)
	assert.Equal(t, context.Canceled, e.err)

	// A server stream: every status in order, then the client cancels it.
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	stream, err := c.Watch(sctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	for i := range watchN {
		resp, err := stream.Recv()
		require.NoError(t, err, "status %d", i)
		require.Equal(t, watchStatus(i), resp.GetStatus(), "status %d", i)
	}
	serverStarted(t, h)
	scancel()
	_, err = stream.Recv()
	assert.Equal(t, codes.Canceled, status.Code(err), "client: %v", err)
	assert.Equal(t, context.Canceled, serverEnded(t, h).err)
}

// serverStarted waits for a call on h to begin waiting for its context.
func serverStarted(t *testing.T, h *healthServer) {
	t.Helper()
	select {
	case <-h.started:
	case <-time.After(grpcWait):
		t.Fatal("the server's call did not begin")
	}
}

// serverEnded waits for h's waiting call to end.
func serverEnded(t *testing.T, h *healthServer) ended {
	t.Helper()
	select {
	case e := <-h.ended:
		return e
	case <-time.After(grpcWait):
		t.Fatal("the server's call did not end")
		return ended{}
	}
}

// TestGRPCPipe runs gRPC's health service between two xdpnet stacks over
// the pipe: unary and streaming calls, a deadline and a cancellation
// seen by the server.
func TestGRPCPipe(t *testing.T) {
	a, b := pipeStacks(t)
	ln, err := b.Listen("tcp", ":0")
	require.NoError(t, err)
	h := serveGRPC(t, ln)
	checkGRPC(t, dialGRPC(t, ln.Addr().String(), stackDialer(a)), h)
}
