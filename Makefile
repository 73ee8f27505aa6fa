# Every target creates .venv and installs the project first, so each works on a fresh clone:
# the runtime dependencies for running the service (RUNTIME), the development extras too
# (STAMP: pytest, playwright, ruff, mypy...) for the tests, lint, drills and bench.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME := $(VENV)/.runtime
STAMP := $(VENV)/.installed
DATA ?=
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run web worker deliveries train retrain evaluate moderator migrate test faults cluster-drill cluster-packages simulate lint bench clean browser nginx wordpress mariadb

$(RUNTIME): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: the whole service (embedded Redis unless REDIS_URL, gunicorn, one worker) on :8000
run: $(RUNTIME)
	$(PY) scripts/run.py

## web: gunicorn only (needs REDIS_URL and a migrated database)
web: $(RUNTIME)
	$(PY) -m gunicorn service.wsgi:app --bind 127.0.0.1:$${PORT:-8000} --workers $${WEB_WORKERS:-2}

## worker: one scoring worker (needs REDIS_URL)
worker: $(RUNTIME)
	$(PY) -m worker

## deliveries: one delivery worker: webhooks and alert e-mails (needs REDIS_URL)
deliveries: $(RUNTIME)
	$(PY) -m worker --deliveries

## moderator: create a moderator account, NAME=... [ROLE=admin] [PASSWORD=...]; prints its token
# The password reaches the CLI through the environment, never a command line: make does not
# echo it and no process list shows it.
moderator: export MODERATOR_PASSWORD = $(value PASSWORD)
moderator: $(RUNTIME)
	@test -n "$(NAME)" || { echo 'usage: make moderator NAME=ann [ROLE=admin] [PASSWORD=...]'; exit 2; }
	@echo "$(PY) -m flask --app service moderators add $(NAME) --role $(or $(ROLE),moderator)"
	@$(PY) -m flask --app service moderators add "$(NAME)" --role $(or $(ROLE),moderator)

## migrate: apply database migrations
migrate: $(RUNTIME)
	$(PY) -m flask --app service db upgrade

## train: train on the starter corpus (+ DATA="file-or-folder ...") and activate the model
## (written to MODEL_DIR, then stored in the database, where every machine finds it)
train: $(RUNTIME)
	$(PY) -m models.train $(if $(DATA),--data $(DATA))
	$(PY) -m flask --app service db upgrade
	$(PY) -m flask --app service model import --activate --actor "make train"

## retrain: train on starter corpus + moderators' labels (+ DATA), evaluate, promote via the gate
retrain: $(RUNTIME)
	$(PY) -m flask --app service db upgrade
	$(PY) -m flask --app service model retrain $(if $(DATA),--data "$(DATA)") $(if $(FORCE),--force) --force-hint "make retrain FORCE=1"

## evaluate: metrics of the active model (or MODEL=version) on DATA="file-or-folder ...", per
## kind of comment, decided as on a new blog; LOVO=1: leave one file (video) out, with the
## starter corpus in training
evaluate: $(RUNTIME)
	$(PY) -m models.evaluate --data "$(DATA)" $(if $(MODEL),--model $(MODEL)) \
	  $(if $(BLOG_LANG),--blog-lang $(BLOG_LANG)) \
	  $(if $(LOVO),--leave-one-group-out --with-starter)

## test: the whole suite (SQLite, and PostgreSQL when TEST_DATABASE_URL is set)
test: $(STAMP) browser wordpress nginx cluster-packages
	$(PY) -m pytest $(PYTEST_ARGS)

## browser: Debian's Chromium for the browser tests (never `playwright install`), and an
## emoji font so the screenshots in test-output/screenshots/ show the pages' emoji
browser:
	@command -v chromium >/dev/null && test -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf || { \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || ! command -v sudo >/dev/null || echo sudo ); \
	  $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends chromium \
	    fonts-noto-color-emoji; }

## wordpress: Debian's WordPress (with its Akismet plugin), its default theme and PHP for the
## tests of integrations/wordpress/ (served by `php -S`: no Apache, no PHP-FPM)
wordpress:
	@test -d /usr/share/wordpress/wp-content/plugins/akismet \
	  && test -d /usr/share/wordpress/wp-content/themes/twentytwentythree \
	  && command -v php >/dev/null && php -m | grep -qi mysqli || { \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || ! command -v sudo >/dev/null || echo sudo ); \
	  $$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y \
	    --no-install-recommends wordpress wordpress-theme-twentytwentythree php-cli \
	    php-mysql php-cgi micro-httpd netcat-traditional libapache2-mod-php8.2- php8.2-fpm-; }

## mariadb: Debian's MariaDB server binaries (the WordPress tests start one in a temporary
## folder when none answers on 127.0.0.1:3306)
mariadb:
	@command -v mariadbd >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || ! command -v sudo >/dev/null || echo sudo ); \
	  $$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y \
	    --no-install-recommends mariadb-server; }

## faults: 500 comments while Redis stops for 5 s and a worker is SIGKILLed; then make run
## itself with its worker and Redis killed, Redis paused and a slow webhook receiver; then
## 100 slow sockets for 60 s against the production shape (nginx in front of gunicorn)
faults: $(STAMP) nginx
	$(PY) -m models.train --if-missing
	$(PY) scripts/faults.py --comments $(or $(COMMENTS),500) --redis-down 5
	$(PY) scripts/drill_make_run.py
	$(PY) scripts/drill_slow_clients.py --sockets 100 --seconds 60

## nginx: Debian's nginx-light, the buffering front of the production shape (slow-client drill)
nginx:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || ! command -v sudo >/dev/null || echo sudo ); \
	  $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends nginx-light; }

## cluster-drill: six machines made of network namespaces (data: PostgreSQL + Redis; HAProxy;
## two web: nginx + gunicorn; two workers), comments through the balancer while one web and
## one worker machine are killed and brought back, then a model trained on one worker machine
## is picked up by the other; everything torn down (DRILL_ARGS="--rate 20 --phase-seconds 8")
cluster-drill: $(STAMP) nginx cluster-packages
	$(PY) scripts/drill_cluster.py $(DRILL_ARGS)

## cluster-packages: Debian's HAProxy, PostgreSQL server and iproute2 for the cluster drill
cluster-packages:
	@{ command -v haproxy || test -x /usr/sbin/haproxy; } >/dev/null \
	  && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v ip >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || ! command -v sudo >/dev/null || echo sudo ); \
	  $$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y \
	    --no-install-recommends haproxy postgresql iproute2; }

## simulate: the learning loop on a simulated site (SMS corpus as unseen traffic); JSON summary
simulate: $(RUNTIME)
	$(PY) scripts/simulate_site.py $(if $(DATA),--data $(DATA))

## lint: ruff and mypy
lint: $(STAMP)
	$(PY) -m ruff check service models worker tests scripts
	$(PY) -m mypy

## bench: production shape under load, results in bench/results/ (PEER=isso: Isso beside it;
## the viral-post phase runs behind nginx, installed like `make nginx`)
bench: $(STAMP) nginx
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) -m pip install --quiet py-spy
	$(PY) -m bench.run $(if $(PEER),--peer $(PEER)) $(BENCH_ARGS)

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
