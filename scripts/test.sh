#!/usr/bin/env bash
# scripts/test.sh — THE test command for oauthd (`make test` calls it).
#
# Usage:
#   scripts/test.sh [go test flags...] [packages...]
#   scripts/test.sh -race
#   scripts/test.sh -run TestX ./storage/...
#
# What it does, in order:
#   1. gofmt -l on every tracked/untracked .go file (vendor/ and testdata/
#      excluded); fails listing the unformatted files.
#   2. go vet ./...
#   3. PostgreSQL: if OAUTHD_TEST_POSTGRES_DSN is set it is used as is.
#      Otherwise a throwaway cluster is created in a temp dir on a free
#      127.0.0.1 port (PostgreSQL binaries from /usr/lib/postgresql/*/bin,
#      Debian's `postgresql` package is apt-installed if none are found),
#      database `oauthd_test` is created, and
#      OAUTHD_TEST_POSTGRES_DSN=postgres://postgres@127.0.0.1:PORT/oauthd_test?sslmode=disable
#      is exported. The cluster is stopped and the temp dir removed on exit
#      (success, failure or Ctrl-C). A system cluster, if any, is left alone.
#      OAUTHD_TEST_REQUIRE_POSTGRES=1 is exported so Postgres tests fail
#      instead of skipping.
#   4. Chromium for the browser tests: found on PATH, or Debian's `chromium`
#      package is apt-installed; exported as OAUTHD_TEST_CHROMIUM (see
#      OAUTHD_TEST_BROWSER below).
#   5. go test $GO_TEST_FLAGS <args>, exiting with its status.
#
# Arguments are passed to `go test` unchanged. Package patterns are relative
# to the repo root (the script cd's there, so it works from any directory);
# if no package pattern is among the arguments, ./... is used.
#
# Environment:
#   GO_TEST_FLAGS              default flags, word-split, put before the args
#                              (default: "-count=1 -timeout 14m"); later
#                              flags on the command line override them.
#   OAUTHD_TEST_POSTGRES_DSN   use this Postgres instead of a throwaway one.
#   OAUTHD_TEST_PG_BIN         PostgreSQL bin dir to use (default: newest
#                              /usr/lib/postgresql/*/bin).
#   OAUTHD_TEST_LINT=0         skip the gofmt and go vet steps.
#   OAUTHD_TEST_BROWSER        the real-browser tests (headless Chromium):
#                              auto (default): use chromium, installing
#                                Debian's chromium package if it is missing
#                                (root or sudo); if that is not possible,
#                                warn and let the browser tests skip.
#                              1: the same, but a browser that cannot be had
#                                is an error, and OAUTHD_TEST_REQUIRE_BROWSER=1
#                                is exported so the tests fail instead of
#                                skipping (CI).
#                              0: install nothing; the tests use chromium if
#                                it is on PATH and skip otherwise.
#                              The browser found is exported as
#                              OAUTHD_TEST_CHROMIUM (set it yourself to use
#                              another Chromium binary; nothing is installed
#                              then). Only Debian's chromium package is ever
#                              installed: no browser is downloaded another way.
#
# Progress lines go to stderr, prefixed "test.sh:".
set -euo pipefail

log() { printf 'test.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- helpers

# apt_install PKG... — install Debian packages (root, or via sudo).
apt_install() {
	local sudo=""
	if [[ $(id -u) -ne 0 ]]; then
		command -v sudo >/dev/null 2>&1 || die "need root or sudo to apt-get install $*"
		sudo="sudo"
	fi
	command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
	log "installing Debian package(s): $*"
	$sudo apt-get update -qq
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# go_files — NUL-separated list of the repo's .go files (tracked + untracked,
# minus ignored, vendor/ and testdata/).
go_files() {
	local f
	{
		git ls-files -z -co --exclude-standard -- '*.go' 2>/dev/null ||
			find . -path ./.git -prune -o -type f -name '*.go' -print0
	} | while IFS= read -r -d '' f; do
		f=${f#./}
		case "/$f" in */vendor/* | */testdata/*) continue ;; esac
		[[ -f $f ]] && printf '%s\0' "$f"
	done
}

lint() {
	local files=() bad f
	mapfile -d '' files < <(go_files)
	if ((${#files[@]})); then
		log "gofmt -l (${#files[@]} files)"
		bad=$(gofmt -l "${files[@]}") || die "gofmt failed (syntax error?)"
		if [[ -n $bad ]]; then
			log "these files are not gofmt'ed (run 'make fmt'):"
			while IFS= read -r f; do log "  $f"; done <<<"$bad"
			exit 1
		fi
	fi
	log "go vet ./..."
	go vet ./...
}

# ------------------------------------------------------------- PostgreSQL

PG_TMP=""  # temp dir of our throwaway cluster (empty: none started)
PG_BIN=""
PG_PORT=""
PG_PID="" # pid of our background postgres (or runuser) process

# as_pg CMD... — run a PostgreSQL tool as the cluster owner, from PG_TMP
# (root: as user postgres via runuser; otherwise as the current user).
as_pg() {
	(
		cd "$PG_TMP"
		unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGSERVICE PGOPTIONS PGSSLMODE
		if [[ $(id -u) -eq 0 ]]; then
			exec runuser -u postgres -- "$@"
		else
			exec "$@"
		fi
	)
}

find_pg_bin() {
	local d
	for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k4,4 -V -r); do
		if [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

# free_port — a random TCP port in 20000-60000 nobody listens on.
free_port() {
	local port i
	for ((i = 0; i < 200; i++)); do
		port=$(((RANDOM << 15 | RANDOM) % 40001 + 20000))
		if ! (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	die "no free TCP port found"
}

# stop_postmaster — stop our cluster if it runs; keep its files.
stop_postmaster() {
	[[ -n $PG_TMP && -d $PG_TMP ]] || return 0
	local pm=""
	if [[ -f $PG_TMP/data/postmaster.pid ]]; then
		pm=$(head -n1 "$PG_TMP/data/postmaster.pid" 2>/dev/null || true)
		log "stopping PostgreSQL (port $PG_PORT)"
		as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
	fi
	if [[ $pm =~ ^[0-9]+$ ]] && kill -0 "$pm" 2>/dev/null; then
		kill -KILL "$pm" 2>/dev/null || true
	fi
	if [[ -n $PG_PID ]]; then
		wait "$PG_PID" 2>/dev/null || true
		PG_PID=""
	fi
}

# stop_postgres — stop our cluster and delete its temp dir.
stop_postgres() {
	[[ -n $PG_TMP && -d $PG_TMP ]] || return 0
	stop_postmaster
	rm -rf "$PG_TMP"
	PG_TMP=""
}

on_exit() {
	local rc=$?
	set +e
	stop_postgres
	exit "$rc"
}

start_postgres() {
	PG_BIN=${OAUTHD_TEST_PG_BIN:-}
	if [[ -z $PG_BIN ]]; then
		if ! PG_BIN=$(find_pg_bin); then
			log "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
			apt_install postgresql
			PG_BIN=$(find_pg_bin) || die "PostgreSQL still not found after installing it"
		fi
	fi
	if [[ $(id -u) -eq 0 ]]; then
		id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user to run PostgreSQL as"
		command -v runuser >/dev/null 2>&1 || die "runuser not found"
	fi

	PG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/oauthd-pg.XXXXXX")
	# Unix socket paths are limited to ~107 bytes.
	if ((${#PG_TMP} > 60)); then
		rmdir "$PG_TMP"
		PG_TMP=$(mktemp -d /tmp/oauthd-pg.XXXXXX)
	fi
	[[ $(id -u) -eq 0 ]] && chown postgres: "$PG_TMP"

	log "initdb ($PG_BIN) in $PG_TMP"
	as_pg "$PG_BIN/initdb" -D "$PG_TMP/data" -U postgres -A trust --no-sync \
		-E UTF8 --no-locale >"$PG_TMP/initdb.log" 2>&1 ||
		{ cat "$PG_TMP/initdb.log" >&2; die "initdb failed"; }

	# postgres runs as a background child of this script (not daemonized by
	# `pg_ctl start`), so it is reaped here even where PID 1 reaps no zombies.
	local attempt i
	for attempt in 1 2 3 4 5; do
		PG_PORT=$(free_port)
		log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
		as_pg "$PG_BIN/postgres" -D "$PG_TMP/data" -p "$PG_PORT" -k "$PG_TMP" \
			-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
			-c full_page_writes=off -c max_connections=300 >>"$PG_TMP/pg.log" 2>&1 &
		PG_PID=$!
		for ((i = 0; i < 600; i++)); do # up to 60s
			kill -0 "$PG_PID" 2>/dev/null || break
			"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres && break
			sleep 0.1
		done
		if kill -0 "$PG_PID" 2>/dev/null && "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres; then
			break
		fi
		stop_postmaster
		if ((attempt < 5)) && grep -qiE 'could not bind|address already in use|could not create any TCP/IP sockets' "$PG_TMP/pg.log" 2>/dev/null; then
			log "port $PG_PORT was taken, retrying"
			continue
		fi
		cat "$PG_TMP/pg.log" >&2 2>/dev/null || true
		die "PostgreSQL failed to start"
	done

	as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres oauthd_test ||
		{ cat "$PG_TMP/pg.log" >&2; die "createdb oauthd_test failed"; }
	export OAUTHD_TEST_POSTGRES_DSN="postgres://postgres@127.0.0.1:$PG_PORT/oauthd_test?sslmode=disable"
	log "OAUTHD_TEST_POSTGRES_DSN=$OAUTHD_TEST_POSTGRES_DSN"
}

# ----------------------------------------------------------- browser tests
# cmd/oauthd's browser test drives Debian's chromium headless (as root it
# passes --no-sandbox itself). Only that package is used: never download a
# browser another way.

# ensure_chromium MODE — MODE 1: have a browser or die; auto: have one if
# possible, else warn (the tests then skip).
ensure_chromium() {
	local mode=$1 exe=${OAUTHD_TEST_CHROMIUM:-}
	if [[ -n $exe ]]; then
		[[ -x $exe && ! -d $exe ]] || die "OAUTHD_TEST_CHROMIUM=$exe is not an executable file"
	else
		exe=$(command -v chromium 2>/dev/null || true)
		if [[ -z $exe ]]; then
			log "no chromium on PATH; the browser tests need Debian's chromium package"
			# A subshell, so that a failed install (no root, no sudo, no
			# apt-get) can be only a warning in auto mode.
			if (apt_install chromium) && [[ -x /usr/bin/chromium ]]; then
				exe=/usr/bin/chromium
			elif [[ $mode == 1 ]]; then
				die "could not install Debian's chromium package (OAUTHD_TEST_BROWSER=1)"
			else
				log "WARNING: could not install chromium; the browser tests will be skipped" \
					"(install it with 'apt-get install chromium', or set OAUTHD_TEST_BROWSER=0 to silence this)"
				return 0
			fi
		fi
	fi
	export OAUTHD_TEST_CHROMIUM=$exe
	log "OAUTHD_TEST_CHROMIUM=$exe ($("$exe" --version 2>/dev/null || echo 'version unknown'))"
}

# ------------------------------------------------------------------ main

# has_pkg_arg ARGS... — true if a package pattern is among go test args.
has_pkg_arg() {
	local a name skip=0
	for a in "$@"; do
		if ((skip)); then skip=0; continue; fi
		[[ $a == -args ]] && return 1 # the rest goes to the test binary
		if [[ $a == -* ]]; then
			[[ $a == *=* ]] && continue
			name=${a#-}; name=${name#-}; name=${name#test.}
			case $name in
			run | skip | bench | benchtime | count | cpu | timeout | parallel | list | shuffle | \
				fuzz | fuzztime | fuzzminimizetime | coverprofile | covermode | coverpkg | \
				cpuprofile | memprofile | memprofilerate | blockprofile | blockprofilerate | \
				mutexprofile | mutexprofilefraction | outputdir | trace | o | exec | vet | \
				tags | ldflags | gcflags | asmflags | gccgoflags | p | mod | modfile | overlay | \
				pgo | pkgdir | toolexec | compiler | buildmode | installsuffix | C)
				skip=1 ;;
			esac
			continue
		fi
		return 0
	done
	return 1
}

wants_race() {
	local a
	for a in "$@"; do
		[[ $a == -args ]] && return 1
		[[ $a == -race || $a == --race || $a == -race=true || $a == --race=true ]] && return 0
	done
	return 1
}

main() {
	local start=$SECONDS
	cd "$(dirname "${BASH_SOURCE[0]}")/.."
	command -v go >/dev/null 2>&1 || die "go not found on PATH"

	local flags=()
	read -r -a flags <<<"${GO_TEST_FLAGS--count=1 -timeout 14m}"
	local args=("${flags[@]}" "$@")
	local pkgs=()
	has_pkg_arg "${args[@]}" || pkgs=(./...)

	if [[ ${OAUTHD_TEST_LINT:-1} != 0 ]]; then
		lint
	fi

	if wants_race "${args[@]}"; then
		local cc
		cc=$(go env CC)
		command -v "${cc%% *}" >/dev/null 2>&1 || apt_install gcc libc6-dev
	fi

	trap on_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	if [[ -n ${OAUTHD_TEST_POSTGRES_DSN:-} ]]; then
		log "using the given OAUTHD_TEST_POSTGRES_DSN"
	else
		start_postgres
	fi
	export OAUTHD_TEST_REQUIRE_POSTGRES=1

	case ${OAUTHD_TEST_BROWSER:-auto} in
	1)
		ensure_chromium 1
		export OAUTHD_TEST_REQUIRE_BROWSER=1
		;;
	auto) ensure_chromium auto ;;
	0) log "OAUTHD_TEST_BROWSER=0: not looking for a browser" ;;
	*) die "OAUTHD_TEST_BROWSER must be 1, 0 or auto, not '$OAUTHD_TEST_BROWSER'" ;;
	esac

	local cmd=(go test "${flags[@]}" "${pkgs[@]}" "$@")
	log "${cmd[*]}"
	local status=0
	"${cmd[@]}" || status=$?
	log "go test exited $status after $((SECONDS - start))s"
	return "$status"
}

# Allow `source scripts/test.sh` (e.g. to try one function) without running.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
