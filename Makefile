# Two commands do all set-up: `make run` and `make test`. Both create .venv and
# install from pyproject.toml when needed; the stamp file makes that a no-op
# when nothing changed, so scripts may call `make install` every time.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The bluesky tests run a real PDS and PLC directory (Node packages, pinned in the
# lock file). Installing them takes minutes (better-sqlite3 compiles), so they are
# cached in a git-ignored folder named after the lock file's hash: a changed lock
# installs anew, an unchanged one never. The stamp is written only after `npm ci`
# succeeds, so an interrupted install is redone, not trusted.
NODE_DIR   := tests/support/bluesky
NODE_LOCK  := $(NODE_DIR)/package-lock.json
NODE_HASH  := $(shell sha256sum $(NODE_LOCK) 2>/dev/null | cut -c1-16)
NODE_CACHE := .cache/node/$(NODE_HASH)
NODE_STAMP := $(NODE_CACHE)/.installed

.PHONY: install node-deps pg-check run test lint typecheck unit clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tracker needs Python 3.11 or newer; set PYTHON=python3.x")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

node-deps: $(NODE_STAMP)

$(NODE_STAMP):
	@test -n "$(NODE_HASH)" || { echo "node-deps: cannot read $(NODE_LOCK)" >&2; exit 1; }
	@command -v npm >/dev/null || { echo "node-deps: npm not found; install Node.js (18 or newer) with npm (.ci/run does it with apt-get)" >&2; exit 1; }
	rm -rf $(NODE_CACHE)
	mkdir -p $(NODE_CACHE)
	cp $(NODE_DIR)/package.json $(NODE_LOCK) $(NODE_CACHE)/
	cd $(NODE_CACHE) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The PostgreSQL tests use TRACKER_TEST_POSTGRES_URL when set (.ci/run starts a
# throwaway cluster and sets it), else start their own cluster from the server
# binaries (tests/support/postgres.py). Checked here so a missing server is one
# clear line, not a failure per test.
pg-check:
	@test -n "$$TRACKER_TEST_POSTGRES_URL" \
	  || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null \
	  || { echo "pg-check: no PostgreSQL server binaries (initdb, pg_ctl); install them (apt-get install postgresql, as .ci/run does) or set TRACKER_TEST_POSTGRES_URL" >&2; exit 1; }

# The shipped history (CC0, packaged) goes in first, so even an offline machine's first
# report has years of data; importing it again adds nothing and says so in one line.
run: install
	$(BIN)/tracker history import mastodonusercount
	$(BIN)/tracker collect
	$(BIN)/tracker report

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy --strict tracker

unit: install node-deps pg-check
	$(BIN)/pytest

test: lint typecheck unit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .cache/node
