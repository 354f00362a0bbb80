#!/bin/sh
# The central store: a VictoriaMetrics single node (Debian's victoria-metrics package) that
# every site's agent remote-writes to (/api/v1/write) and Grafana reads as a Prometheus
# datasource. Thirteen months of history: this month against the same month last year.
# Two agents scraping one exporter (an HA pair) write the same samples twice; dedup keeps
# one per scrape interval. Flags given to this script are passed on and win.
: "${DATA_DIR:=/var/lib/victoria-metrics}"
: "${LISTEN:=:8428}"
exec victoria-metrics \
    -storageDataPath="$DATA_DIR" \
    -retentionPeriod=13 \
    -dedup.minScrapeInterval=30s \
    -httpListenAddr="$LISTEN" \
    "$@"
