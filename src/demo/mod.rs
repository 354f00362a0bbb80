//! `mining-exporter demo`: embedded simulators of the three pool APIs plus the exporter
//! polling them, so the whole thing can be seen working without a pool account or a token.

pub mod configs;
pub mod farm;
pub mod harness;
pub mod history;
pub mod http_json;
pub mod luxor;
pub mod ourpool;
pub mod ultimate_proxy;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::StartError;
use crate::{Exporter, bind};

pub use configs::{
    EXAMPLE_CONFIG, config_of, demo_config, demo_http_json_sources, demo_luxor, demo_proxy,
    demo_source, example_config, example_source,
};
pub use http_json::{LuxCoreOptions, LuxCoreSimulator, LuxbioOptions, LuxbioSimulator};
pub use luxor::{LuxorOptions, LuxorSimulator};
pub use ourpool::{OurPoolOptions, OurPoolSimulator};
pub use ultimate_proxy::{UltimateProxyOptions, UltimateProxySimulator};

/// How often the demo polls Ultimate Proxy and Luxor: fast enough to watch, inside their
/// limits (3 requests every 5 s is 36 a minute of the proxy's 60, and 0.6/s of Luxor's 1/s).
pub const DEMO_INTERVAL: Duration = Duration::from_secs(5);
/// OurPool's 1000 requests an hour allow 3 requests every 10.8 s at the most.
pub const DEMO_OURPOOL_INTERVAL: Duration = Duration::from_secs(15);

/// How often the demo polls the generic sources' simulators: the payments gateway (two
/// sources on one key, 100/min) and the cursor-paginated pool (3 pages of 100 workers, 60/min).
pub const DEMO_HTTP_JSON_INTERVAL: Duration = Duration::from_secs(10);

/// The simulators the demo runs: one Ultimate Proxy account, one OurPool account, a Luxor
/// workspace with two subaccounts, and for the generic `http_json` source, a LuxCore-style
/// payments gateway and a Luxbio-style cursor-paginated pool.
pub struct DemoPools {
    pub ultimate_proxy: UltimateProxySimulator,
    pub ourpool: OurPoolSimulator,
    pub luxor: LuxorSimulator,
    pub luxcore: LuxCoreSimulator,
    pub luxbio: LuxbioSimulator,
}

impl DemoPools {
    pub async fn start() -> std::io::Result<DemoPools> {
        Ok(DemoPools {
            ultimate_proxy: UltimateProxySimulator::start(UltimateProxyOptions::default()).await?,
            ourpool: OurPoolSimulator::start(OurPoolOptions::default()).await?,
            luxor: LuxorSimulator::start(LuxorOptions::default()).await?,
            luxcore: LuxCoreSimulator::start(LuxCoreOptions::default()).await?,
            luxbio: LuxbioSimulator::start(LuxbioOptions::default()).await?,
        })
    }
}

/// Starts the simulators and the exporter, prints where to look, serves until `shutdown`.
pub async fn run_demo(listen: SocketAddr, shutdown: CancellationToken) -> Result<(), StartError> {
    let pools = DemoPools::start()
        .await
        .map_err(|source| StartError::Bind {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            source,
        })?;
    let exporter = Exporter::new(demo_config(listen, &pools)?)?;
    let listener = bind(listen).await?;
    let address = listener.local_addr().map_err(StartError::Serve)?;
    let banner = format!(
        "mining-exporter demo: no pool account or token needed\n\
         \x20 Ultimate Proxy simulator: {} ({} workers, VIP limit 60 requests/min), polled every {}s\n\
         \x20 OurPool simulator: {} (account {:?}, {} workers, 100/min + 1000/h), polled every {}s\n\
         \x20 Luxor simulator: {} (workspace with subaccounts hq and annex), polled every {}s\n\
         \x20 LuxCore-style payments API simulator: {} (balances; v2 signed with HMAC), polled every {}s by two http_json sources\n\
         \x20 Luxbio-style API simulator: {} ({} workers, cursor pages of 100), polled every {}s by an http_json source\n\
         \x20 workers drop out, leave and join as the demo runs\n\
         \x20 metrics: http://{address}/metrics\n\
         \x20 landing page: http://{address}/   (Ctrl-C to stop)\n",
        pools.ultimate_proxy.base_url(),
        pools.ultimate_proxy.worker_names().len(),
        DEMO_INTERVAL.as_secs(),
        pools.ourpool.base_url(),
        pools.ourpool.account(),
        pools.ourpool.worker_names().len(),
        DEMO_OURPOOL_INTERVAL.as_secs(),
        pools.luxor.base_url(),
        DEMO_INTERVAL.as_secs(),
        pools.luxcore.base_url(),
        DEMO_HTTP_JSON_INTERVAL.as_secs(),
        pools.luxbio.base_url(),
        pools.luxbio.workers().len(),
        DEMO_HTTP_JSON_INTERVAL.as_secs(),
    );
    // A closed stdout (a pipe whose reader left) must not stop the demo.
    let _ = std::io::stdout().lock().write_all(banner.as_bytes());
    exporter.serve(listener, shutdown).await
}
