# certdir: `make run` serves an example directory, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= run/data
SUFFIX ?= dc=example,dc=com
APT_PACKAGES := ldap-utils libldap2-dev libsasl2-dev slapd openssl gpgsm dirmngr gpg-agent \
  chromium chromium-driver libnss3-tools postgresql certbot
APT := $$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: run test lint typecheck unit integration bench bench-replication bench-acme fuzz build-packages \
  system-packages clean

# Again when the Makefile changes: an older venv's install may not be the "compat" one.
$(BIN)/certdir: pyproject.toml Makefile
	@$(PYTHON) -c "import ensurepip" 2>/dev/null || { \
	  echo "installing python3-venv"; $(APT) update -qq && $(APT) install -y -qq python3-venv >/dev/null; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e . $(EDITABLE)
	touch $@

$(VENV)/.test-deps: $(BIN)/certdir | system-packages
	$(BIN)/pip install --quiet -e '.[test]' $(EDITABLE)
	touch $@

# The request path's modules compiled with mypyc from the same source (it is
# mypy --strict clean): about a third less CPU per search and per returned entry
# (bench/request_path.py). Each extension lands beside its .py and wins the
# import, so the rule follows the sources, and `directory.compiled` refuses one
# older than its source; mypyc's shared runtime module lands in the checkout's
# root, which the "compat" editable install puts on sys.path. `make fuzz` removes
# them: atheris instruments bytecode only.
EDITABLE := --config-settings editable_mode=compat
COMPILED := $(addprefix directory/,protocol/ber.py protocol/codec.py protocol/dn.py \
  protocol/filter.py protocol/cache.py protocol/attribute.py entry.py predicates.py \
  selection.py acl/view.py acl/engine.py ops/search.py ops/visibility.py search_plan.py \
  resolved_filter.py matching.py backend/sqlite.py backend/wal_watch.py backend/candidates.py \
  dispatch.py protocol/messages.py protocol/results.py protocol/controls.py \
  ops/privileges.py backend/index_stats.py backend/paths.py acl/identity.py \
  overlays/access.py overlays/proxy.py overlays/referral.py overlays/replica.py \
  overlays/syncprov.py overlays/chaining.py overlays/ppolicy.py)
UNCOMPILE := rm -f $$(find directory -name '*.so') *__mypyc.*.so $(VENV)/.compiled

$(VENV)/.compiled: $(COMPILED) Makefile | $(BIN)/certdir build-packages
	$(BIN)/pip install --quiet -e '.[compile]' $(EDITABLE)
	@mkdir -p run; echo "compiling the request path with mypyc (log in run/mypyc.log)"
	$(BIN)/mypyc $(COMPILED) >run/mypyc.log 2>&1 || { tail -40 run/mypyc.log; exit 1; }
	@# mypyc copies an extension it did not need to rebuild with its old time.
	touch $$(find directory -name '*.so') $@

# ldap-utils for the tests, libldap/libsasl headers and a C compiler for
# python-ldap (built from source), slapd for bench/, gpgsm/dirmngr/gpg-agent
# for the mail-client scenario (test042); Chromium, its driver and NSS's
# certutil (to make the browser trust the test CA) for tests/e2e/; PostgreSQL
# for the suite's second storage backend (tests/pg_cluster.py); certbot, the ACME
# client of the ACME scenario (test100).
system-packages: build-packages
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  $(APT) update -qq && $(APT) install -y -qq $$missing >/dev/null; \
	fi

# A C compiler and Python's headers: for mypyc's extensions and python-ldap.
build-packages:
	@missing=""; command -v gcc >/dev/null || missing="$$missing gcc"; \
	$(PYTHON) -c "import sysconfig, os, sys; \
	  sys.exit(not os.path.exists(sysconfig.get_paths()['include'] + '/Python.h'))" \
	  || missing="$$missing python3-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  $(APT) update -qq && $(APT) install -y -qq $$missing >/dev/null; \
	fi

$(DATA)/certdir.yaml: | $(VENV)/.compiled
	$(BIN)/certdir init --data-dir $(DATA) --suffix $(SUFFIX) \
	  --listen ldap://127.0.0.1:3389 --listen ldaps://127.0.0.1:6636 \
	  --http-listen http://127.0.0.1:8080 --http-listen https://127.0.0.1:8443
	$(BIN)/certdir ldif import --data-dir $(DATA) certdir/examples/addressbook.ldif

run: $(DATA)/certdir.yaml $(VENV)/.compiled
	@echo "bind as cn=admin,$(SUFFIX) with the password in $(DATA)/secrets/root-password, e.g.:"
	@echo "  ldapsearch -H ldap://127.0.0.1:3389 -x -D cn=admin,$(SUFFIX) -y $(DATA)/secrets/root-password -b $(SUFFIX)"
	@echo "anonymous address book lookups work too:"
	@echo "  ldapsearch -H ldap://127.0.0.1:3389 -x -b ou=people,$(SUFFIX) '(mail=alice*)' cn mail"
	@echo "TLS (StartTLS, ldaps://127.0.0.1:6636, https) trusts $(DATA)/public/ca.pem:"
	@echo "  LDAPTLS_CACERT=$(DATA)/public/ca.pem ldapwhoami -H ldap://127.0.0.1:3389 -ZZ -x -D cn=admin,$(SUFFIX) -y $(DATA)/secrets/root-password"
	@echo "web service: http://127.0.0.1:8080 (CA certificates, CRLs, OCSP) and https://127.0.0.1:8443 (pages, KMS enrollment)"
	$(BIN)/certdir serve --data-dir $(DATA)

lint: $(VENV)/.test-deps
	$(BIN)/ruff check --no-cache .

typecheck: $(VENV)/.test-deps
	$(BIN)/mypy

# ruff and mypy, then four pytest passes side by side: the integration
# scenarios on SQLite and on PostgreSQL (the only tests that depend on the
# storage backend), each backend's files split in two halves (every other
# file: the long replication scenarios land in both), the unit and other
# tests with SQLite's first half; each PostgreSQL half on a throwaway cluster
# of its own. The suite is bound by the two cores, so halves of like size
# keep both busy to the end. Each pass writes $(TEST_LOGS)/NAME.log, printed
# whole with its exit status when it ends; make fails if any failed, once
# all ended. PYTEST_ARGS goes to every pass (e.g. PYTEST_ARGS='-k test001'
# for a short run); a pass it leaves without a test (pytest's exit status 5)
# has not failed, as long as another ran. A pass in the background would
# ignore SIGINT: `trap - INT` lets Ctrl-C (or a SIGTERM of the recipe, passed
# on as SIGINT) stop it as it stops pytest in the foreground, its servers and
# cluster torn down. Each pass ends with its slowest tests (--durations).
TEST_LOGS := run/test
PYTEST := $(BIN)/pytest -q --durations=20
test: SHELL := /bin/bash
# Where the environment forbids bytecode files (PYTHONDONTWRITEBYTECODE), each
# of the suite's Python processes (every server, `certdir` command and
# client) would compile certdir's modules anew, 0.15 s of CPU apiece: the
# passes share one cache under run/ instead, the source tree left clean.
test: export PYTHONDONTWRITEBYTECODE :=
test: export PYTHONPYCACHEPREFIX := $(CURDIR)/run/pycache
test: $(VENV)/.test-deps $(VENV)/.compiled
	$(BIN)/ruff check --no-cache .
	$(BIN)/mypy
	@mkdir -p $(TEST_LOGS); declare -A pass; \
	trap 'kill -INT $${!pass[@]} 2>/dev/null; exit 1' TERM; \
	others=$$(ls -d tests/*/ | grep -v -e integration -e data -e __pycache__); \
	for storage in sqlite postgresql; do for half in 0 1; do \
	  files=$$(ls tests/integration/test*.py | awk -v half=$$half 'NR % 2 == half'); \
	  [ $$storage$$half = sqlite0 ] && files="$$others $$files"; \
	  (trap - INT; exec $(PYTEST) --storage=$$storage $(PYTEST_ARGS) $$files) \
	    >$(TEST_LOGS)/$$storage-$$half.log 2>&1 & pass[$$!]=$$storage-$$half; \
	done; done; \
	echo "pytest on sqlite and on postgresql, two halves each, side by side, logs in $(TEST_LOGS)/"; \
	statuses=""; failed=0; ran=0; \
	while [ $${#pass[@]} -gt 0 ]; do \
	  wait -n -p ended; status=$$?; name=$${pass[$$ended]}; unset "pass[$$ended]"; \
	  echo "=== pytest on $$name: exit status $$status ==="; cat $(TEST_LOGS)/$$name.log; \
	  statuses="$$statuses $$name=$$status"; \
	  case $$status in 0) ran=1 ;; 5) ;; *) failed=1 ;; esac; \
	done; \
	echo "pytest exit statuses:$$statuses"; [ $$failed = 0 ] && [ $$ran = 1 ]

bench: $(VENV)/.test-deps $(VENV)/.compiled
	$(BIN)/python bench/directory_bench.py

bench-replication: $(VENV)/.test-deps $(VENV)/.compiled
	$(BIN)/python bench/replication_bench.py

bench-acme: $(VENV)/.test-deps $(VENV)/.compiled
	$(BIN)/python bench/acme_bench.py

# Coverage-guided fuzzing with atheris, outside `make test` and CI: each target
# (tests/fuzz/targets.py) runs FUZZ_SECONDS, its corpus kept in run/fuzz/TARGET
# and seeded from tests/data/fuzz/seeds/TARGET; a crash input is left in
# run/fuzz/ as TARGET-crash-<sha1> and the run fails (tests/data/fuzz/README.md
# says how it becomes a regression case).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := ber dn filter ldif schema

$(VENV)/.fuzz-deps: $(BIN)/certdir
	$(BIN)/pip install --quiet -e '.[fuzz]' $(EDITABLE)
	touch $@

fuzz: $(VENV)/.fuzz-deps
	$(UNCOMPILE)
	@status=0; for target in $(FUZZ_TARGETS); do \
	  mkdir -p run/fuzz/$$target; \
	  echo "fuzzing $$target for $(FUZZ_SECONDS) s"; \
	  $(BIN)/python -m tests.fuzz.run $$target -max_total_time=$(FUZZ_SECONDS) \
	    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=run/fuzz/$$target- run/fuzz/$$target \
	    tests/data/fuzz/seeds/$$target || status=1; \
	done; exit $$status

clean:
	$(UNCOMPILE)
	rm -rf run build .mypy_cache .pytest_cache
