# Shared by the bench scripts (sourced from the repository root): oha (from
# PATH, else installed with cargo into target/bench-tools), a release build
# (or the binary LKGUARD_BIN names),
# a work directory removed on exit (with the server, `$pid`, stopped), and a
# self-signed certificate for 127.0.0.1 in it.
OHA="${OHA:-$(command -v oha || true)}"
if [ -z "$OHA" ]; then
    OHA=target/bench-tools/bin/oha
    [ -x "$OHA" ] || cargo install oha --locked --root target/bench-tools >/dev/null
fi
# LKGUARD_BIN: a given binary (the static musl one, say) instead of this build.
if [ -z "${LKGUARD_BIN:-}" ]; then
    cargo build --release --quiet
    LKGUARD_BIN=./target/release/lkguard
fi
work="$(mktemp -d)"
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$work/tls.key" -out "$work/tls.crt" -days 1 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
