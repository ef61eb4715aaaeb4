package xdp

// The BPF objects are compiled from bpf/*.c with clang and committed
// together with the generated Go bindings, so a plain `go build` needs no
// clang. Regenerate with `go generate ./internal/dataplane/xdp` (Debian:
// clang, llvm, libbpf-dev, linux-libc-dev); gen_check.sh verifies that the
// committed files match their sources.

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -mcpu=v3 -Wall -Werror -I/usr/include/x86_64-linux-gnu" -target bpfel -type svc_key -type svc_cfg -type real -type flow_key -type flow_key4 -type conn -type persist_key -type persist_val -type counters -type nat_rev -type pool_addr -type config -type exit_reason -type event -type conn_state -type fc_entry -type fc_entry6 lb bpf/lb.c
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -mcpu=v3 -Wall -Werror -I/usr/include/x86_64-linux-gnu" -target bpfel -type vip_key -type decap_counter decap bpf/decap.c
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -mcpu=v3 -Wall -Werror -I/usr/include/x86_64-linux-gnu" -target bpfel bounce bpf/bounce.c
