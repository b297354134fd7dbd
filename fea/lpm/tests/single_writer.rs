//! The documented concurrency model: a forwarding thread owns its table and applies the
//! updates its control channel delivered between two lookup batches, so every batch sees a
//! route set that is a prefix of the update sequence, never a half-applied update.

use oxr_lpm::reference::BinaryTrie;
use oxr_lpm::{Lpm4, NextHopId, Update};
use std::sync::mpsc;

fn nh(v: u32) -> NextHopId {
    NextHopId::new(v).unwrap()
}

#[test]
fn forwarding_thread_applies_updates_between_batches() {
    // Control plane: 200 rounds of updates, each a few inserts and removes under 10/8.
    let mut rounds: Vec<Vec<Update<u32>>> = Vec::new();
    let mut x = 0x1234_5678u32;
    for r in 0..200u32 {
        let mut round = Vec::new();
        for _ in 0..5 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let len = 8 + (x % 25) as u8; // 8..=32
            let net = ipnet::Ipv4Net::new((0x0A00_0000 | (x & 0x00FF_FFFF)).into(), len)
                .unwrap()
                .trunc();
            round.push(if x.is_multiple_of(3) {
                Update::Remove(net)
            } else {
                Update::Insert(net, nh(r))
            });
        }
        rounds.push(round);
    }
    let probes: Vec<u32> = (0..4096u32)
        .map(|i| 0x0A00_0000 | i.wrapping_mul(0x9E37_79B9) >> 8)
        .collect();

    let (tx, rx) = mpsc::channel::<Vec<Update<u32>>>();
    let (res_tx, res_rx) = mpsc::channel::<Vec<Option<NextHopId>>>();
    let worker_probes = probes.clone();
    let worker = std::thread::spawn(move || {
        let mut table = Lpm4::new();
        let mut out = vec![None; worker_probes.len()];
        // Dataplane loop: drain pending updates, then run one batch.
        for updates in rx {
            table.apply(updates);
            table.lookup_batch(&worker_probes, &mut out);
            res_tx.send(out.clone()).unwrap();
        }
    });

    let mut reference = BinaryTrie::<u32>::new();
    for round in &rounds {
        tx.send(round.clone()).unwrap();
        for u in round {
            match *u {
                Update::Insert(n, h) => {
                    reference.insert(n, h);
                }
                Update::Remove(n) => {
                    reference.remove(n);
                }
            }
        }
        let got = res_rx.recv().unwrap();
        for (a, o) in probes.iter().zip(&got) {
            assert_eq!(*o, reference.lookup(*a), "address {a:#x}");
        }
    }
    drop(tx);
    worker.join().unwrap();
}
