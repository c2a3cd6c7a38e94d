#!/usr/bin/env bash
# A private, offline Docker engine for the tests and the local dry run: up | down | status.
#
# Why our own daemon: CI machines are fresh, run as root, reach only the apt and pip registries (no Docker
# Hub), and must not get new interfaces or iptables rules. So we install docker.io, start dockerd with no
# bridge and no iptables, with every path (data, exec root, pidfile, socket) under one folder outside the
# repo, and build the only base image we need, kvc-base:bookworm, from Debian packages with debootstrap.
# The folder persists between runs on one machine, so the base image (about 50 s to build) is cached.
#
#   eval "$(bash scripts/docker-engine.sh up)"   # prints: export DOCKER_HOST=unix://<dir>/docker.sock
#   bash scripts/docker-engine.sh status          # exit 0 when the engine answers
#   bash scripts/docker-engine.sh down            # stop the daemon, unmount what it left
#
# KVC_DOCKER_DIR (default /var/tmp/kvc-docker) chooses the folder; one daemon per folder.
# KVC_SKIP_DOCKER=1 (a developer's explicit choice) makes `up` do nothing; tests/docker then skips.
set -euo pipefail
shopt -s inherit_errexit

readonly BASE_IMAGE=kvc-base:bookworm
readonly BASE_RECIPE=1 # bump when the base image recipe below changes: `up` then rebuilds it
readonly SUITE=bookworm
DIR=${KVC_DOCKER_DIR:-/var/tmp/kvc-docker}
readonly DIR SOCK="$DIR/docker.sock" PIDFILE="$DIR/dockerd.pid" LOG="$DIR/dockerd.log"
readonly START_TIMEOUT=${KVC_DOCKER_START_TIMEOUT:-90}
export DOCKER_HOST="unix://$SOCK"

log() { printf 'docker-engine: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

refuse_folder_inside_repo() {
  local repo here
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
  here=$(realpath -m "$DIR")
  case "$here/" in "$repo"/*) die "KVC_DOCKER_DIR=$DIR is inside the repository; choose a folder outside it" ;; esac
  mkdir -p "$DIR"
}

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

daemon_pid() {
  # The dockerd serving this folder: the pidfile's process, else the dockerd started with this very pidfile.
  local pid=""
  [[ -s $PIDFILE ]] && pid=$(<"$PIDFILE")
  if [[ -z $pid || $(cat "/proc/$pid/comm" 2>/dev/null) != dockerd ]]; then
    pid=$(pgrep -x dockerd -a | awk -v f="--pidfile $PIDFILE " 'index($0 " ", f) { print $1; exit }')
  fi
  [[ -n $pid ]] && echo "$pid"
}

mounts_under() {
  # Mount points below $DIR, deepest first (a host-network container or debootstrap can leave some).
  awk -v d="$DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

unmount_leftovers() {
  local point
  while read -r point; do
    [[ -n $point ]] && { umount "$point" 2>/dev/null || umount -l "$point"; }
  done < <(mounts_under)
}

install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [[ -x /usr/bin/docker ]] || missing+=(docker.io) # its client has BuildKit built in (build-project-image.sh)
  # Debian's python3 with venv builds the image's wheels (the image's very Python, see build-project-image.sh).
  /usr/bin/python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]} with apt"
  # Never let the package's init script start a default daemon (bridge + iptables) behind our back.
  local guard=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$guard" && chmod +x "$guard"
  fi
  export DEBIAN_FRONTEND=noninteractive
  local status=0
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$DIR/apt.log" 2>&1 ||
    status=$?
  [[ -n $guard ]] && rm -f "$guard"
  if ((status != 0)); then
    tail -n 20 "$DIR/apt.log" >&2
    die "apt-get install ${missing[*]} failed (exit $status); see $DIR/apt.log"
  fi
}

start_daemon() {
  local pid
  if ! pid=$(daemon_pid); then
    rm -f "$PIDFILE"
    unmount_leftovers
    mkdir -p "$DIR/docker" "$DIR/exec"
    # An empty config file: ignore /etc/docker/daemon.json, whatever it says.
    [[ -s $DIR/daemon.json ]] || echo '{}' >"$DIR/daemon.json"
    log "starting dockerd (log: $LOG)"
    setsid nohup dockerd --config-file "$DIR/daemon.json" --bridge=none --iptables=false --ip-masq=false \
      --data-root "$DIR/docker" --exec-root "$DIR/exec" --pidfile "$PIDFILE" \
      -H "unix://$SOCK" >>"$LOG" 2>&1 </dev/null 9>&- &
    pid=$!
  fi
  local deadline=$((SECONDS + START_TIMEOUT))
  until engine_answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$LOG" >&2 || true
      die "dockerd exited; see $LOG"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 20 "$LOG" >&2 || true
      die "dockerd did not answer on $SOCK within ${START_TIMEOUT}s"
    fi
    sleep 0.25
  done
}

debian_mirror() {
  # The mirror apt already uses for this suite (the machine's configured registry), else Debian's.
  local uri
  # shellcheck disable=SC2016 # $(REPO_URI) is apt's own template, not a shell expansion
  uri=$(apt-get indextargets --format '$(REPO_URI)' "Release: $SUITE" 'Created-By: Packages' 2>/dev/null |
    sort -u | head -n 1)
  echo "${uri:-http://deb.debian.org/debian/}"
}

base_image_current() {
  [[ $(docker image inspect -f '{{index .Config.Labels "org.kvc.base-recipe"}}' "$BASE_IMAGE" 2>/dev/null) == "$BASE_RECIPE" ]]
}

build_base_image() {
  local rootfs="$DIR/rootfs" mirror
  mirror=$(debian_mirror)
  log "building $BASE_IMAGE with debootstrap from $mirror (about a minute, once per machine)"
  unmount_leftovers
  rm -rf "$rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$rootfs" "$mirror" >"$DIR/debootstrap.log" 2>&1 ||
    {
      tail -n 20 "$DIR/debootstrap.log" >&2
      unmount_leftovers
      die "debootstrap failed; see $DIR/debootstrap.log"
    }
  unmount_leftovers
  # Trim what a container never reads: package caches and lists, docs, man pages, translations.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
    "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
  : >"$rootfs/etc/resolv.conf"
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL org.kvc.base-recipe=$BASE_RECIPE" \
    --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  log "$BASE_IMAGE ready ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | awk '{printf "%d MB", $1/1e6}'))"
}

cmd_up() {
  if [[ ${KVC_SKIP_DOCKER:-} == 1 ]]; then
    log "KVC_SKIP_DOCKER=1: not starting an engine (the Docker tests skip too)"
    return 0
  fi
  refuse_folder_inside_repo
  # One `up` at a time per folder (make and a pytest fixture may both call it).
  exec 9>"$DIR/up.lock"
  flock -w 900 9 || die "another 'up' holds $DIR/up.lock"
  install_packages
  if engine_answers; then log "engine already answers on $SOCK"; else start_daemon; fi
  if base_image_current; then log "$BASE_IMAGE present"; else build_base_image; fi
  echo "export DOCKER_HOST=unix://$SOCK"
}

cmd_down() {
  local pid waited=0
  if pid=$(daemon_pid); then
    log "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do
      if ((waited++ >= 120)); then
        log "dockerd still running after 30s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.25
    done
  else
    log "no dockerd running for $DIR"
  fi
  rm -f "$PIDFILE"
  unmount_leftovers
}

cmd_status() {
  local pid
  if engine_answers; then
    pid=$(daemon_pid || echo "not ours")
    echo "running: DOCKER_HOST=unix://$SOCK pid=$pid"
    if base_image_current; then echo "base image: $BASE_IMAGE present"; else echo "base image: $BASE_IMAGE missing"; fi
    return 0
  fi
  echo "stopped: nothing answers on unix://$SOCK"
  return 3
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
*)
  echo "usage: $0 up|down|status   (KVC_DOCKER_DIR=${DIR})" >&2
  exit 2
  ;;
esac
