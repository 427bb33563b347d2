# Common commands. `make static` builds the release binary that the container image ships;
# `make check-static` asserts that it is fully static and within the size budget.

TARGET       := x86_64-unknown-linux-gnu
STATIC_BIN   := target/$(TARGET)/release/infisical-materializer
# Size budget of the static binary: 5 MiB.
SIZE_BUDGET  := 5242880

.PHONY: all static check-static test demo bench

all: test

static:
	RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target $(TARGET)

test:
	cargo test --workspace

demo:
	cargo run --example demo

# Fails unless the binary is statically linked (no interpreter, no shared libraries) and at most
# SIZE_BUDGET bytes; prints the size either way.
check-static: static
	@set -e; bin='$(STATIC_BIN)'; \
	description=$$(file -b "$$bin"); echo "file: $$description"; \
	case "$$description" in \
	  *"statically linked"*|*"static-pie linked"*) ;; \
	  *) echo "FAIL: $$bin is not statically linked" >&2; exit 1 ;; \
	esac; \
	ldd_out=$$(ldd "$$bin" 2>&1 || true); \
	case "$$ldd_out" in \
	  *"=>"*|*ld-linux*) echo "FAIL: ldd lists shared libraries: $$ldd_out" >&2; exit 1 ;; \
	  *"not a dynamic executable"*|*"statically linked"*) echo "ldd: $$(echo $$ldd_out)" ;; \
	  *) echo "FAIL: unexpected ldd output: $$ldd_out" >&2; exit 1 ;; \
	esac; \
	size=$$(stat -c %s "$$bin"); \
	mib=$$(awk "BEGIN { printf \"%.2f\", $$size / 1048576 }"); \
	echo "size: $$size bytes ($$mib MiB; budget $(SIZE_BUDGET) bytes = 5 MiB)"; \
	if [ "$$size" -gt $(SIZE_BUDGET) ]; then \
	  echo "FAIL: $$bin is larger than the 5 MiB budget" >&2; exit 1; \
	fi; \
	echo "OK: static and within budget"

bench: static
	bench/run.sh
