// The three dashboards, each a function of _config, named by the file generate.sh writes.
{
  grafanaDashboards+:: {
    local c = $._config,
    'farm-overview.json': (import 'farm-overview.libsonnet')(c),
    'worker.json': (import 'worker.libsonnet')(c),
    'exporter-health.json': (import 'exporter-health.libsonnet')(c),
  },
}
