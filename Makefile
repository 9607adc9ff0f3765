# faithscope: `make demo` runs the main job on the embedded samples; `make test` runs every test.
# Both install what a fresh Debian machine lacks (pkg-config, libasound2-dev for cpal).

CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: deps build test demo demo-headless clippy fmt

# System packages: pkg-config and libasound2-dev to build the audio player (cpal), tmux for the
# inspector's end-to-end test in a real terminal, espeak-ng for spoken hints (`faithscope audio
# hint`), fonts-dejavu-core for the text of PNG plots
# (optional: without apt-get the system's own fonts are used; without any font PNGs lack text).
deps:
	@command -v $(CARGO) >/dev/null 2>&1 || { echo "error: cargo not found. Install Rust (https://rustup.rs) and run make again." >&2; exit 1; }
	@missing=""; \
	pkg-config --exists alsa 2>/dev/null || missing="$$missing pkg-config libasound2-dev"; \
	command -v tmux >/dev/null 2>&1 || missing="$$missing tmux"; \
	command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng"; \
	[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || ! command -v apt-get >/dev/null 2>&1 || missing="$$missing fonts-dejavu-core"; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing$$missing (apt-get)..."; \
	    $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing \
	      || { echo "error: could not install$$missing with apt-get; install them by hand (as root: apt-get install$$missing)." >&2; exit 1; }; \
	  else \
	    echo "error: missing$$missing and apt-get is not available; install pkg-config, the ALSA development files (libasound2-dev / alsa-lib-devel), tmux and espeak-ng with your package manager." >&2; exit 1; \
	  fi; \
	fi

# The dev profile builds dependencies at opt-level 3 (Cargo.toml), so `make demo` after `make test`
# reuses the same build instead of compiling everything again for release.
FAITHSCOPE := ./target/debug/faithscope
# The embedded models (trained by `faithscope train-demo` + tools/train_demo.py, see
# samples/README.md) and the synthetic test split they were trained for.
DEMO_MODEL := samples/models/demo-faithful
DEMO_COMPARE := samples/models/demo-posthoc
DEMO_DATA := samples/synth-test
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

# In a terminal: the inspector on the embedded samples, demo-faithful loaded and demo-posthoc one
# key (o) away. Without one (a script, CI): the same pipeline headless: list the items, play one,
# run the interventions with both models and print their reports.
demo: build
	@if [ -t 0 ] && [ -t 1 ]; then \
	  echo "Opening the inspector on $(DEMO_DATA) with $(DEMO_MODEL); o switches to $(DEMO_COMPARE), ? for help, q to quit"; \
	  $(FAITHSCOPE) inspect --data $(DEMO_DATA) --model $(DEMO_MODEL) --compare $(DEMO_COMPARE); \
	else \
	  $(MAKE) --no-print-directory demo-headless; \
	fi

demo-headless: build
	$(FAITHSCOPE) items $(DEMO_DATA) | tail -n 4
	$(FAITHSCOPE) play $(DEMO_DATA)/items.jsonl --item synth-test-count-0000
	@for m in $(DEMO_MODEL) $(DEMO_COMPARE); do \
	  run=$(DEMO_RUN)-$$(basename $$m); rm -rf $$run; \
	  echo "== $$m: early answering and adding mistakes on 24 items"; \
	  $(FAITHSCOPE) run --data $(DEMO_DATA) --model $$m --interventions early,mistakes \
	    --mistake-source facts --limit 24 --quiet --out $$run && \
	  $(FAITHSCOPE) report $$run | head -n 40 || exit 1; \
	done
