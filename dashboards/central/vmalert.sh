#!/bin/sh
# The shipped rules over the central VictoriaMetrics: vmalert (Debian's victoria-metrics
# package) evaluates rules.yml and alerts.yml against it, writes the recorded series and the
# ALERTS series back into it, restores alert state from it after a restart, and sends
# alerts to Alertmanager. Flags given to this script are passed on and win.
: "${RULES_DIR:=/etc/mining-exporter/prometheus}"
: "${VICTORIA_METRICS:=http://127.0.0.1:8428}"
: "${ALERTMANAGER:=http://alertmanager:9093}"
: "${LISTEN:=127.0.0.1:8880}"
exec vmalert \
    -rule="$RULES_DIR/rules.yml" \
    -rule="$RULES_DIR/alerts.yml" \
    -datasource.url="$VICTORIA_METRICS" \
    -remoteWrite.url="$VICTORIA_METRICS" \
    -remoteRead.url="$VICTORIA_METRICS" \
    -notifier.url="$ALERTMANAGER" \
    -evaluationInterval=30s \
    -httpListenAddr="$LISTEN" \
    "$@"
