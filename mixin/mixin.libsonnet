// mining-exporter's monitoring mixin: prometheusRules, prometheusAlerts and
// grafanaDashboards, all following _config (config.libsonnet). generate.sh renders the files
// shipped under ../dashboards/ from it.
(import 'config.libsonnet') +
(import 'rules.libsonnet') +
(import 'alerts.libsonnet') +
(import 'dashboards/dashboards.libsonnet')
