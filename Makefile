# faithscope: `make demo` runs the main job on the embedded samples; `make test` runs every test.
# Both install what a fresh Debian machine lacks (pkg-config, libasound2-dev for cpal).

CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: deps build test demo demo-headless clippy fmt

# System packages: pkg-config and libasound2-dev to build the audio player (cpal), tmux for the
# inspector's end-to-end test in a real terminal, fonts-dejavu-core for the text of PNG plots
# (optional: without apt-get the system's own fonts are used; without any font PNGs lack text).
deps:
	@command -v $(CARGO) >/dev/null 2>&1 || { echo "error: cargo not found. Install Rust (https://rustup.rs) and run make again." >&2; exit 1; }
	@missing=""; \
	pkg-config --exists alsa 2>/dev/null || missing="$$missing pkg-config libasound2-dev"; \
	command -v tmux >/dev/null 2>&1 || missing="$$missing tmux"; \
	[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || ! command -v apt-get >/dev/null 2>&1 || missing="$$missing fonts-dejavu-core"; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing$$missing (apt-get)..."; \
	    $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing \
	      || { echo "error: could not install$$missing with apt-get; install them by hand (as root: apt-get install$$missing)." >&2; exit 1; }; \
	  else \
	    echo "error: missing$$missing and apt-get is not available; install pkg-config, the ALSA development files (libasound2-dev / alsa-lib-devel) and tmux with your package manager." >&2; exit 1; \
	  fi; \
	fi

# The dev profile builds dependencies at opt-level 3 (Cargo.toml), so `make demo` after `make test`
# reuses the same build instead of compiling everything again for release.
FAITHSCOPE := ./target/debug/faithscope
# The embedded model: the trained demo model once it ships, else the tiny test checkpoint.
DEMO_MODEL := $(firstword $(wildcard samples/models/demo-faithful) tests/fixtures/qwen2_audio/tiny-b)
DEMO_RUN := target/demo-run

build: deps
	$(CARGO) build

# Library, binary and integration tests (doc tests are skipped: no doc comment holds code), then
# the benchmark programs are compiled (not run) so that they cannot rot.
test: deps
	$(CARGO) test --lib --bins --tests
	$(CARGO) build --benches

clippy: deps
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# In a terminal: the inspector on the embedded samples. Without one (a script, CI): the same
# pipeline headless: list the items, play one, run the interventions, print the report.
demo: build
	@if [ -t 0 ] && [ -t 1 ]; then \
	  echo "Opening the inspector on samples/ with $(DEMO_MODEL) (? for help, q to quit)"; \
	  $(FAITHSCOPE) inspect --data samples --model $(DEMO_MODEL) --protocol lanham; \
	else \
	  $(MAKE) --no-print-directory demo-headless; \
	fi

demo-headless: build
	$(FAITHSCOPE) items samples
	$(FAITHSCOPE) play samples/items.jsonl --item beeps-3-count
	rm -rf $(DEMO_RUN)
	$(FAITHSCOPE) run --data samples --model $(DEMO_MODEL) --protocol lanham \
	  --interventions early,mistakes,filler --mistake-source rules --chains 1 --limit 3 --out $(DEMO_RUN)
	$(FAITHSCOPE) report $(DEMO_RUN)
