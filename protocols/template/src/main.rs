//! `oxr-template`: the process. The only I/O of the crate: the SDK's clients (config from
//! oxr-routerd, interfaces from oxr-fea, routes to oxr-rib), one UDP socket per active
//! interface, the clock and timers. Everything it hears becomes an
//! [`Input`](oxr_template::instance::Input) of the instance; everything the instance says
//! is done here.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use clap::Parser;
use oxr_sdk::sockets::UdpPerInterface;
use oxr_sdk::{
    CommonArgs, ConfigWatcher, InterfaceEvent, InterfaceWatcher, RibPublisher, RibSink, Runtime,
    Timers,
};
use oxr_template::api::{self, Request};
use oxr_template::config::TemplateConfig;
use oxr_template::instance::{Input, Instance, Output};
use oxr_template::{packet, rib, PROCESS};
use tokio::sync::mpsc;

#[derive(Parser)]
#[command(name = "oxr-template", version, about = "oxr protocol template")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = Runtime::protocol::<TemplateConfig>(PROCESS, args.common)?;
    let config = rt.config::<Option<TemplateConfig>>()?;
    let interfaces = rt.interfaces();
    let rib = rt.rib_publisher(rib::hello());
    let (req_tx, requests) = mpsc::channel(16);
    let show = Arc::new(api::Show(req_tx));
    rt.run(show, event_loop(config, interfaces, rib, requests))
        .await
}

/// Turns everything heard into inputs of the instance and does what it says.
async fn event_loop(
    mut config: ConfigWatcher<Option<TemplateConfig>>,
    mut interfaces: InterfaceWatcher,
    mut rib: RibPublisher,
    mut requests: mpsc::Receiver<Request>,
) -> anyhow::Result<()> {
    let mut sockets = UdpPerInterface::new(packet::PORT, vec![]);
    let mut timers = Timers::new();
    let mut inst = Instance::new();
    loop {
        let input = tokio::select! {
            u = config.next() => match u {
                Some(u) => Input::Config(u.section.clone()),
                None => anyhow::bail!("config watcher ended"),
            },
            ev = interfaces.next() => match ev {
                Some(InterfaceEvent::Changed(i)) => Input::Interface(i),
                Some(InterfaceEvent::Removed(i)) => Input::InterfaceRemoved(i.name),
                None => anyhow::bail!("interface watcher ended"),
            },
            Some(d) = sockets.recv() => Input::Packet { ifname: d.ifname, src: d.src, data: d.data },
            key = timers.next() => Input::Timer(key),
            Some(r) = requests.recv() => {
                match r {
                    Request::Show(words, reply) => {
                        let _ = reply.send(api::show(&inst, timers.now(), &words));
                    }
                    Request::Metrics(reply) => {
                        let _ = reply.send(api::metrics(&inst));
                    }
                }
                continue;
            }
        };
        for out in inst.handle(timers.now(), input) {
            match out {
                Output::Send { ifname, hello } => {
                    let dst = SocketAddrV4::new(Ipv4Addr::BROADCAST, packet::PORT);
                    sockets.send(&ifname, dst, &hello.encode());
                }
                Output::Timer { key, at } => timers.set(key, at),
                Output::Rib(u) => rib.apply(u),
            }
        }
        sockets.sync(inst.socket_interfaces());
    }
}
