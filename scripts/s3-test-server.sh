#!/usr/bin/env bash
# A real S3 server with Object Lock on 127.0.0.1 for the integration tests: a one-node Ceph
# cluster (monitor, memstore OSD) and the RADOS Gateway, all state under one folder.
#   scripts/s3-test-server.sh start   installs the Debian packages if missing, starts, waits
#   scripts/s3-test-server.sh stop    stops the daemons
#   scripts/s3-test-server.sh env     prints the variables the tests read
# HOLDFAST_S3_PORT (7480), HOLDFAST_S3_MON_PORT (3300), HOLDFAST_S3_MON_V1_PORT (6789) and
# HOLDFAST_S3_STATE move a second server out of the first one's way.
set -euo pipefail

STATE=${HOLDFAST_S3_STATE:-$(cd "$(dirname "$0")/.." && pwd)/.s3-test-server}
CONF=$STATE/ceph.conf
PORT=${HOLDFAST_S3_PORT:-7480}
# The monitor's ports, so that two test servers (two checkouts) can run side by side.
MON_PORT=${HOLDFAST_S3_MON_PORT:-3300}
MON_V1_PORT=${HOLDFAST_S3_MON_V1_PORT:-6789}
ACCESS_KEY=holdfast-test-access
SECRET_KEY=holdfast-test-secret-key-0123456789

log() { echo "s3-test-server: $*" >&2; }

install_packages() {
	if command -v radosgw >/dev/null && command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null && command -v uuidgen >/dev/null; then
		return
	fi
	log "installing radosgw, ceph-mon, ceph-osd, uuid-runtime"
	export DEBIAN_FRONTEND=noninteractive
	local pkgs="radosgw ceph-mon ceph-osd uuid-runtime"
	apt-get install -y -qq --no-install-recommends $pkgs >/dev/null 2>&1 || {
		apt-get update -qq >/dev/null
		apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
	}
}

wait_for() { # seconds, description, command...
	local seconds=$1 what=$2
	shift 2
	for _ in $(seq 1 $((seconds * 10))); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	log "timed out waiting for $what"
	errors >&2
	return 1
}

# The daemons' errors (Ceph logs them at level -1, the line after continues the message). A
# daemon's log thread may still be writing as its parent exits, hence the pause.
errors() {
	sleep 0.5
	grep -h -A1 -e ' -1 ' "$STATE"/log/*.log 2>/dev/null | grep -v -e '^--$' | tail -n 12 || true
}

stop() {
	[ -d "$STATE/run" ] || return 0
	for pidfile in "$STATE"/run/*.pid; do
		[ -f "$pidfile" ] || continue
		local pid
		pid=$(cat "$pidfile")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 30); do
			# A killed daemon lingers as a zombie for a moment: state Z counts as gone.
			if [ ! -e "/proc/$pid" ] || grep -q '^[0-9]* ([^)]*) Z' "/proc/$pid/stat" 2>/dev/null; then break; fi
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
		rm -f "$pidfile"
	done
}

start() {
	# A daemon that exits at once (a port in use, a full disk) says why only in its log.
	trap 'status=$?; log "failed (exit $status) at line $LINENO: $BASH_COMMAND"; errors >&2; exit $status' ERR
	install_packages
	stop
	rm -rf "$STATE"
	mkdir -p "$STATE"/{mon/ceph-a,osd/ceph-0,rgw/ceph-rgw.a,run,log}
	local fsid
	fsid=$(uuidgen)
	cat >"$CONF" <<CONF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$MON_V1_PORT]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
paxos propose interval = 0.1
# The monitor refuses to start, and a running one shuts down, when its folder's disk has 5 %
# or less free: a test server on a nearly full shared disk must still run (its OSD is memory).
mon data avail crit = 0
run dir = $STATE/run
admin socket = $STATE/run/\$name.asok
pid file = $STATE/run/\$name.pid
log file = $STATE/log/\$name.log
[mon]
mon data = $STATE/mon/\$cluster-\$id
[osd]
osd data = $STATE/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = 6442450944
[client.rgw.a]
ms mon client mode = crc secure
# Without tcp_nodelay the gateway holds the end of each response on a kept-alive connection
# until the client's delayed ACK (40 ms on Linux): every request after a connection's first
# took 44 ms where a real provider answers at once, and sequential requests dominated a test.
rgw frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1
rgw data = $STATE/rgw/\$cluster-\$name
rgw dns name = localhost
CONF
	monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$MON_V1_PORT]" "$STATE/monmap" >/dev/null
	ceph-mon -c "$CONF" --mkfs -i a --monmap "$STATE/monmap" >"$STATE/log/mkfs-mon.log" 2>&1
	ceph-mon -c "$CONF" -i a
	wait_for 30 "the monitor" ceph -c "$CONF" mon stat
	local uuid
	uuid=$(uuidgen)
	ceph -c "$CONF" osd new "$uuid" >/dev/null
	ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$uuid" >"$STATE/log/mkfs-osd.log" 2>&1
	ceph-osd -c "$CONF" -i 0
	wait_for 30 "the OSD" sh -c "ceph -c '$CONF' osd stat -f json | grep -q '\"num_up_osds\":1'"
	radosgw -c "$CONF" -n client.rgw.a
	wait_for 60 "radosgw on port $PORT" curl -sf "http://127.0.0.1:$PORT/"
	radosgw-admin -c "$CONF" user create --uid=tester --display-name=tests \
		--access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null
	log "ready on http://127.0.0.1:$PORT"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
env)
	echo "HOLDFAST_S3_ENDPOINT=http://127.0.0.1:$PORT"
	echo "HOLDFAST_S3_ACCESS_KEY=$ACCESS_KEY"
	echo "HOLDFAST_S3_SECRET_KEY=$SECRET_KEY"
	;;
*)
	echo "usage: $0 start|stop|env" >&2
	exit 2
	;;
esac
