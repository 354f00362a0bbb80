#!/bin/sh
# vmagent (Debian's victoria-metrics package) at one site: scrapes the exporter and
# remote-writes to the central store through a queue on disk, so an uplink outage, or a
# restart during one, loses no sample while the queue has room. Settings come from the
# environment; any flag given to this script is passed on and wins over the defaults.
: "${SITE:=farm-a}"
: "${CENTRAL_WRITE_URL:=http://central:8428/api/v1/write}"
: "${SCRAPE_CONFIG:=/etc/mining-exporter/vmagent-scrape.yml}"
: "${QUEUE_DIR:=/var/lib/vmagent/queue}"
: "${LISTEN:=127.0.0.1:8429}"
exec vmagent \
    -promscrape.config="$SCRAPE_CONFIG" \
    -remoteWrite.url="$CENTRAL_WRITE_URL" \
    -remoteWrite.label=site="$SITE" \
    -remoteWrite.tmpDataPath="$QUEUE_DIR" \
    -remoteWrite.maxDiskUsagePerURL=1GB \
    -httpListenAddr="$LISTEN" \
    "$@"
