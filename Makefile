# The two commands a newcomer needs: `make run` and `make test`. Both install missing Debian packages and
# start their own PostgreSQL when needed.
.PHONY: run test stress-test build deps bench-append bench-rebuild bench-workers bench-archive bench-api format lint clean

run: deps
	scripts/run.sh

test: deps
	scripts/test.sh

stress-test: deps
	scripts/stress-test.sh

build: deps
	swift build

deps:
	@scripts/deps.sh

bench-append: deps
	scripts/bench.sh append

bench-rebuild: deps
	scripts/bench.sh rebuild

bench-workers: deps
	scripts/bench.sh workers

bench-archive: deps
	scripts/bench.sh archive

bench-api:
	@WITH_WRK=1 scripts/deps.sh
	scripts/bench-api.sh

format:
	swift format --in-place --recursive Sources Tests Package.swift

lint:
	swift format lint --strict --recursive Sources Tests Package.swift

clean:
	rm -rf .build
