# make demo — create the virtual environment, install, run the main job
# make test — install what the tests need (Python and Debian packages), run the whole suite
VENV        ?= .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the readers, the network tests and Spark (Java 17) use (checked, installed
# only when missing)
APT_PACKAGES := nfdump tshark softflowd nftables iproute2 procps poppler-utils postgresql \
                libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 chromium fonts-dejavu-core \
                openjdk-17-jre-headless
# the dashboard's chart library, vendored (no CDN); `make vendor` fetches it again and checks it
CHARTJS     := 4.6.1
CHARTJS_SHA := 87364cc2b2a76a6684929e7d6b80b18a897794db38400caff1fcf1791c6925d2

.PHONY: install system-packages demo test lint bench clean vendor

install: $(STAMP) system-packages

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "installing hemostat and its dependencies into $(VENV)"
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,spark]' 2>&1 | grep -v '^WARNING: Location' || true
	@$(PY) -c 'import hemostat, duckdb, pyarrow' || (echo "installation failed" && exit 1)
	@touch $@

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

demo: install
	$(VENV)/bin/hemostat demo

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest

bench: install
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

vendor:
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack -q chart.js@$(CHARTJS) >/dev/null && tar xzf chart.js-$(CHARTJS).tgz && \
	echo "$(CHARTJS_SHA)  package/dist/chart.umd.min.js" | sha256sum -c --quiet && \
	cp package/dist/chart.umd.min.js $(CURDIR)/src/hemostat/server/dashboard/static/vendor/ && \
	cp package/LICENSE.md $(CURDIR)/src/hemostat/server/dashboard/static/vendor/chart.js.LICENSE.md && \
	rm -rf $$tmp && echo "Chart.js $(CHARTJS) vendored"

clean:
	rm -rf $(VENV) hemostat-home demo-out .pytest_cache .mypy_cache .ruff_cache
