#!/usr/bin/env bash
# Renders the mixin into the files shipped under dashboards/ (or under the folder given):
# prometheus/rules.yml, prometheus/alerts.yml and grafana/*.json. Needs Debian's `jsonnet`.
#   mixin/generate.sh [OUT [OVERRIDE]]
# OVERRIDE is jsonnet added to the mixin, e.g. '{ _config+:: { siteLabels: ["region"] } }'.
# The test suite runs it into a temporary folder and fails on any difference, so after
# changing the mixin run it and commit what it wrote.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../dashboards}"
override="${2:-}"
[ -n "$override" ] || override='{}'
mkdir -p "$out/prometheus" "$out/grafana"

yaml() {
    jsonnet -S -J "$here" --ext-code "override=$override" -e "
        local mixin = (import 'mixin.libsonnet') + std.extVar('override');
        '# Generated from mixin/ by mixin/generate.sh: change the mixin, not this file.\n'
        + std.manifestYamlDoc(mixin.$1, indent_array_in_object=true, quote_keys=false)
        + '\n'" > "$2"
}
yaml prometheusRules "$out/prometheus/rules.yml"
yaml prometheusAlerts "$out/prometheus/alerts.yml"
jsonnet -J "$here" --ext-code "override=$override" -m "$out/grafana" \
    -e "((import 'mixin.libsonnet') + std.extVar('override')).grafanaDashboards" >/dev/null
