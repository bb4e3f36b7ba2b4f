#!/usr/bin/env bash
# Installs what the integration tests run against (DESIGN.md, "Real services in tests"):
#   - etcd from Debian's etcd-server (and etcdctl from etcd-client, handy by hand);
#   - Debian's snmpd, snmp, influxdb and prometheus (host metrics, ingest, self-metrics);
#   - Debian's chromium (the web inspector's browser tests and benchmark drive it through playwright-core);
#   - Debian's rsyslog and python3-fluent-logger (the log listeners' peer tests, test/logs/*peers.test.ts);
#   - Apache Kafka's broker jars from Maven Central, into a cache folder, through scripts/kafka/pom.xml.
# Idempotent: what is already there is left alone, so a second run costs about a second.
# Java 17 and Maven come with the machine; the script checks for them and says so if they are missing.
#
# Environment:
#   ARGUS_CACHE_DIR   cache root (default: $HOME/.cache/argus); Kafka lands in $ARGUS_CACHE_DIR/kafka-<version>/libs
set -euo pipefail

# Keep in step with scripts/kafka/pom.xml (kafka.version) and KAFKA_VERSION in scripts/services.ts.
KAFKA_VERSION=3.9.2
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_DIR="${ARGUS_CACHE_DIR:-$HOME/.cache/argus}"
KAFKA_HOME="$CACHE_DIR/kafka-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"
# Written last, so an interrupted download is redone instead of trusted.
KAFKA_MARKER="$KAFKA_HOME/.complete"

say() { echo "[install-test-deps] $*"; }
die() { echo "[install-test-deps] ERROR: $*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    die "need root (or sudo) to run: $*"
  fi
}

install_etcd() {
  if command -v etcd >/dev/null 2>&1; then
    say "etcd: present ($(etcd --version 2>/dev/null | head -1)), nothing to do"
    return
  fi
  say "etcd: missing, installing Debian's etcd-server and etcd-client"
  as_root apt-get update -q || die "apt-get update failed"
  # The package may try to start a system etcd on the default ports; our tests never use those ports.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server etcd-client ||
    die "apt-get install etcd-server etcd-client failed"
  command -v etcd >/dev/null 2>&1 || die "etcd-server installed but no 'etcd' on PATH"
  say "etcd: installed ($(etcd --version | head -1))"
}

# Debian packages the host-metrics tests and benchmarks run against: snmpd (an independent SNMP agent),
# snmp (snmpget/snmpbulkwalk, to compare against) and influxdb (the ingest benchmark's peer).
install_debian_tools() {
  local missing=()
  command -v snmpd >/dev/null 2>&1 || missing+=(snmpd)
  command -v snmpget >/dev/null 2>&1 || missing+=(snmp)
  command -v influxd >/dev/null 2>&1 || missing+=(influxdb)
  if [ ${#missing[@]} -eq 0 ]; then
    say "snmpd, snmp, influxdb: present, nothing to do"
    return
  fi
  say "installing Debian's ${missing[*]}"
  as_root apt-get update -q || die "apt-get update failed"
  # Their packages may start system daemons on the default ports; our tests never use those ports.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" ||
    die "apt-get install ${missing[*]} failed"
  command -v snmpd >/dev/null 2>&1 || die "snmpd installed but not on PATH"
  command -v snmpget >/dev/null 2>&1 || die "snmp installed but no snmpget on PATH"
  command -v influxd >/dev/null 2>&1 || die "influxdb installed but no influxd on PATH"
}

# Debian's prometheus: the self-metrics test starts its own on loopback (scripts/services/prometheus.ts).
# The package enables a system Prometheus on 0.0.0.0:9090 (and starts it where services may start):
# it is stopped and disabled, so nothing of it listens beyond loopback. No recommends: they would add
# prometheus-node-exporter, another daemon on 0.0.0.0.
install_prometheus() {
  if command -v prometheus >/dev/null 2>&1; then
    say "prometheus: present ($(prometheus --version 2>&1 | head -1)), nothing to do"
    return
  fi
  say "prometheus: missing, installing Debian's prometheus"
  as_root apt-get update -q || die "apt-get update failed"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus ||
    die "apt-get install prometheus failed"
  command -v prometheus >/dev/null 2>&1 || die "prometheus installed but not on PATH"
  if [ -d /run/systemd/system ]; then
    as_root systemctl stop prometheus.service || true
  elif [ -x /etc/init.d/prometheus ]; then
    as_root /etc/init.d/prometheus stop >/dev/null 2>&1 || true
  fi
  if command -v systemctl >/dev/null 2>&1; then
    as_root systemctl disable prometheus.service >/dev/null 2>&1 || say "prometheus: could not disable the system service"
  fi
  say "prometheus: installed ($(prometheus --version 2>&1 | head -1)), system service stopped and disabled"
}

# Debian's chromium: test/inspector/browser.test.ts and bench/inspector.ts drive /usr/bin/chromium headless
# through playwright-core, which never downloads a browser of its own.
install_chromium() {
  if [ -x /usr/bin/chromium ]; then
    say "chromium: present ($(/usr/bin/chromium --version 2>/dev/null | head -1)), nothing to do"
    return
  fi
  say "chromium: missing, installing Debian's chromium"
  as_root apt-get update -q || die "apt-get update failed"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium ||
    die "apt-get install chromium failed"
  [ -x /usr/bin/chromium ] || die "chromium installed but no /usr/bin/chromium"
  say "chromium: installed ($(/usr/bin/chromium --version 2>/dev/null | head -1))"
}

# Debian's rsyslog and python3-fluent-logger: test/logs/peers.test.ts starts its own rsyslogd on loopback,
# test/logs/forward-peers.test.ts runs /usr/bin/python3 with Debian's fluent-logger against the listeners.
# The rsyslog package enables and starts a system rsyslogd (reading /dev/log, writing /var/log): it is
# stopped and disabled, so no daemon of it is left running. No recommends (logrotate is not needed).
install_log_peers() {
  local missing=()
  [ -x /usr/sbin/rsyslogd ] || missing+=(rsyslog)
  /usr/bin/python3 -c 'import fluent.sender' >/dev/null 2>&1 || missing+=(python3-fluent-logger)
  if [ ${#missing[@]} -eq 0 ]; then
    say "rsyslog, python3-fluent-logger: present, nothing to do"
    return
  fi
  say "installing Debian's ${missing[*]}"
  as_root apt-get update -q || die "apt-get update failed"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" ||
    die "apt-get install ${missing[*]} failed"
  [ -x /usr/sbin/rsyslogd ] || die "rsyslog installed but no /usr/sbin/rsyslogd"
  /usr/bin/python3 -c 'import fluent.sender' || die "python3-fluent-logger installed but fluent.sender not importable"
  if [ -d /run/systemd/system ]; then
    as_root systemctl stop rsyslog.service syslog.socket >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/rsyslog ]; then
    as_root /etc/init.d/rsyslog stop >/dev/null 2>&1 || true
  fi
  if command -v systemctl >/dev/null 2>&1; then
    as_root systemctl disable rsyslog.service >/dev/null 2>&1 || say "rsyslog: could not disable the system service"
  fi
  # Without systemd or an init script that worked, a daemon started by the package is stopped by its pid file.
  if [ -f /run/rsyslogd.pid ]; then
    as_root kill "$(cat /run/rsyslogd.pid)" >/dev/null 2>&1 || true
  fi
  say "rsyslog: installed ($(/usr/sbin/rsyslogd -v 2>/dev/null | head -1)), system service stopped and disabled"
}

check_java() {
  command -v java >/dev/null 2>&1 || die "java not found: Kafka needs Java 17 (Debian: openjdk-17-jre-headless)"
  command -v mvn >/dev/null 2>&1 || die "mvn not found: needed to fetch Kafka's jars (Debian: maven)"
}

install_kafka() {
  if [ -f "$KAFKA_MARKER" ] && [ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]; then
    say "kafka $KAFKA_VERSION: cached in $KAFKA_LIBS, nothing to do"
    return
  fi
  say "kafka $KAFKA_VERSION: fetching broker jars from Maven Central into $KAFKA_LIBS"
  rm -rf "$KAFKA_LIBS" "$KAFKA_MARKER"
  mkdir -p "$KAFKA_LIBS"
  mvn -q -B -Dstyle.color=never -f "$SCRIPT_DIR/kafka/pom.xml" dependency:copy-dependencies \
    -Dkafka.version="$KAFKA_VERSION" -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS" ||
    die "mvn dependency:copy-dependencies failed (see above)"
  [ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ] || die "kafka_2.13-$KAFKA_VERSION.jar missing after download"
  echo "$KAFKA_VERSION" >"$KAFKA_MARKER"
  say "kafka $KAFKA_VERSION: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars in $KAFKA_LIBS"
}

install_etcd
install_debian_tools
install_prometheus
install_chromium
install_log_peers
check_java
install_kafka
say "done"
