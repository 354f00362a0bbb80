// What every mining-exporter dashboard shares: the header, the variables, and the panel and
// target skeletons, each reading the data source variable.
local datasource = { type: 'prometheus', uid: '${datasource}' };

local queryVariable(name, label, definition) = {
  name: name,
  label: label,
  type: 'query',
  datasource: datasource,
  query: { query: definition, refId: name + '-query' },
  definition: definition,
  multi: true,
  includeAll: true,
  // `.*` rather than the list of values, so All also matches a series without the label
  // (a single site that sets no `site`).
  allValue: '.*',
  current: { selected: true, text: ['All'], value: ['$__all'] },
  refresh: 2,
  sort: 1,
  hide: 0,
  regex: '',
  options: [],
};

{
  // The variables, in order: the data source, one per site label, then pool, source,
  // account and worker as far as `upTo` (each narrowed by the ones before it).
  variables(c, upTo)::
    local site = [
      queryVariable(label, std.asciiUpper(label[0]) + label[1:], 'label_values(mining_exporter_source_up, %s)' % label)
      for label in c.siteLabels
    ];
    local chain = [
      queryVariable('pool', 'Pool', 'label_values(mining_exporter_source_up{%(siteSelector)s}, pool)' % c),
      queryVariable('source', 'Source', 'label_values(mining_exporter_source_up{%(siteFilter)spool=~"$pool"}, source)' % c),
      queryVariable('account', 'Account', 'label_values(mining_workers{%(siteFilter)spool=~"$pool", source=~"$source"}, account)' % c),
      queryVariable('worker', 'Worker', 'label_values(mining_worker_up{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account"}, worker)' % c),
    ];
    local last = std.find(upTo, [variable.name for variable in chain])[0];
    [{
      name: 'datasource',
      label: 'Data source',
      type: 'datasource',
      query: 'prometheus',
      refresh: 1,
      hide: 0,
      regex: '',
      current: {},
      options: [],
      multi: false,
      includeAll: false,
    }] + site + chain[0:last + 1],

  dashboard(c, uid, title, description, variables, panels):: {
    uid: uid,
    title: title,
    description: description,
    tags: [c.dashboardTag],
    editable: true,
    schemaVersion: 39,
    version: 1,
    graphTooltip: 1,
    time: { from: 'now-6h', to: 'now' },
    refresh: c.dashboardRefresh,
    timezone: '',
    fiscalYearStartMonth: 0,
    liveNow: false,
    weekStart: '',
    annotations: { list: [] },
    links: [{
      type: 'dashboards',
      tags: [c.dashboardTag],
      asDropdown: true,
      title: 'mining-exporter',
      includeVars: true,
      keepTime: true,
    }],
    templating: { list: variables },
    // Panel ids in order of appearance.
    panels: [panels[i] { id: i + 1 } for i in std.range(0, std.length(panels) - 1)],
  },

  panel(type, title, description, gridPos, targets, rest):: {
    type: type,
    title: title,
    description: description,
    datasource: datasource,
    targets: targets,
    gridPos: gridPos,
  } + rest,

  range(refId, expr, legend):: {
    datasource: datasource,
    expr: expr,
    refId: refId,
    legendFormat: legend,
    range: true,
  },

  instant(refId, expr, legend):: {
    datasource: datasource,
    expr: expr,
    refId: refId,
    legendFormat: legend,
    instant: true,
    range: false,
  },

  table(refId, expr, legend):: self.instant(refId, expr, legend) { format: 'table' },
}
