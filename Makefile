# xdpnet. Lab tests and benchmarks need root (namespaces, veth, XDP).
GO        ?= go
PKGS      ?= ./...
FUZZTIME  ?= 10s
BENCHTIME ?= 2000000x
BENCHCOUNT ?= 3
STATICCHECK_VERSION ?= v0.8.2

.PHONY: all setup test race lint bench bench-go bench-micro interop fuzz fuzz-long

all: lint test

# Debian packages the lab and its tests use, and the Go linters.
setup:
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q iproute2 ethtool tshark iputils-ping arping socat iperf3 curl iptables hping3 tcpdump wrk
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GO) mod download

# Every test: unit, scripted, pipe-link and (as root) the veth lab.
test:
	$(GO) test -count=1 -timeout 20m $(PKGS)

# The tests under the race detector; RACEFLAGS=-short trims the long
# simulations (CI runs it so on the packages where goroutines meet).
race:
	$(GO) test -count=1 -race $(RACEFLAGS) -timeout 20m $(PKGS)

# lint also enforces the layer map of docs/DESIGN.md (importcheck).
lint:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet $(PKGS)
	$$($(GO) env GOPATH)/bin/staticcheck $(PKGS)
	$(GO) run ./internal/tools/importcheck

# The main job: the bench command (go run ./bench, see `go doc ./bench`)
# builds its veth lab and measures xdpnet against the kernel, gVisor and
# asavie/xdp on it, every workload on each system, 2 s a cell, 3
# repetitions, the systems alternated (~8 minutes here): the header, a
# progress line per cell, and a Markdown table. BENCHFLAGS passes flags,
# e.g. BENCHFLAGS="-only tcp-rr -count 1 -json out.json", "-quick" (1 s a
# cell, once: 85 s here) or "-plot plots" (PNGs).
BENCHFLAGS ?=
bench:
	$(GO) run ./bench $(BENCHFLAGS)

# The go-test benchmarks of ./bench/ that measure what the command does
# not: builds veth labs and measures xdpnet against its baselines, both
# sides in one run: the ring layer against asavie/xdp with the poll(2)
# loop and through nic.XDPLink too (RxDrop, for BENCHTIME frames), then
# UDP echo of 64 and 1024 bytes, ping, a UDP flood's receive CPU, TCP bulk
# against the kernel on a pair of its own with offloads on and off
# (their own sizes: RxDrop's count would make 2M paced pings), then the
# public API (sockapi): xdpnet-to-xdpnet request/response and bulk
# towards a GRO peer; then ping and connect times with up to 20k idle
# connections open (IdlePing), a listener serving through a SYN flood
# (SYNFlood), and one stream through 0-3 % random loss against the
# kernel on CUBIC and on BBR (LossyBulk, ~1-2 minutes) (each run bounded
# in bytes, packets, connections and time; a minute or two per count).
# TCPRR, SockConnect and SockIdle, which the command covers, still run
# with go test -bench.
bench-go:
	$(GO) test -run '^$$' -bench 'RxDrop' -benchtime $(BENCHTIME) -count $(BENCHCOUNT) -timeout 20m ./bench/ && $(GO) test -run '^$$' -bench 'UDPEcho|Ping|UDPFlood|TCPBulk|SockRR|SockBulk|SYNFlood|LossyBulk' -count $(BENCHCOUNT) -timeout 30m ./bench/

# Interop with the Linux kernel through loss, at the issue's size: 1 GiB
# each way at once over one connection, 1 % lost each way, then the same
# with 1 % of xdpnet's frames reordered (TestInteropLossyLab; `make test`
# runs it at 64 MiB). INTEROP_MIB sets the size.
INTEROP_MIB ?= 1024
interop:
	XDPNET_INTEROP_MIB=$(INTEROP_MIB) $(GO) test -count=1 -v -run '^TestInteropLossyLab$$' -timeout 60m ./sockapi/

# Micro-benchmarks of the ring layer and links, with allocations.
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem ./xdp/ ./nic/ ./internal/wire/ ./arp/ ./ip/ ./udp/ ./fastpath/

# Every fuzz target for FUZZTIME each: a duration, or an execution count
# like 50000x. CI uses a count: with a duration, Go 1.26's fuzz coordinator
# can fail a clean run with "context deadline exceeded" at the deadline
# (golang/go#75804, fixed in Go 1.27). -timeout bounds a count in time.
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s -timeout 5m $$pkg || exit 1; \
	  done; \
	done

fuzz-long:
	$(MAKE) fuzz FUZZTIME=5m
