VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt | cksum | cut -d' ' -f1)

.PHONY: install run serve test migrate demo bench lint clean reset

$(STAMP): requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	rm -f $(VENV)/.installed-*; touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py demo_setup

## make run: set up and start web + worker + beat with demo data (http://127.0.0.1:8000)
run: demo
	$(VENV)/bin/honcho start

## make serve: production (Procfile.production: ASGI web tier via deploy/gunicorn.conf.py after
## collectstatic + migrate, a worker per queue group, beat); needs the production environment, e.g. in .env
serve: install
	VENV=$(VENV) $(VENV)/bin/honcho -f Procfile.production start

## make test: the whole suite (set DATABASE_URL / REDIS_URL for PostgreSQL + Redis)
test: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

## make lint: the layer contracts (.importlinter; docs/architecture.md, "Layers")
lint: install
	$(VENV)/bin/lint-imports

bench: install
	$(PY) -m bench.run

## make reset: start the demo over (stop `make run` with Ctrl-C first): the embedded SQLite database,
## the file broker and cache (.broker) and uploaded media go; .venv stays, so `make run` is quick again.
## With DATABASE_URL / REDIS_URL set, those are not touched: recreate that database yourself.
reset:
	rm -rf db.sqlite3 db.sqlite3-journal db.sqlite3-wal db.sqlite3-shm .broker media
	@echo "Reset. Start again with: make run"

## make clean: reset, and also remove .venv and collected static files
clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-journal db.sqlite3-wal db.sqlite3-shm .broker media staticfiles
