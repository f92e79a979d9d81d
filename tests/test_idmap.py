"""dist_train.sampling.idmap: the hash map exact mode uses instead of sorts and binary
searches gives the positions a dictionary gives, first appearances in order."""

import numpy as np

from dist_train.sampling.idmap import append_new, build_map, grow, lookup


def test_lookup_finds_every_key_and_nothing_else():
    rng = np.random.default_rng(0)
    keys = rng.choice(1 << 40, 5000, replace=False).astype(np.int64)
    tk, tv = build_map(keys, keys.shape[0])
    assert np.array_equal(lookup(tk, tv, keys), np.arange(keys.shape[0]))
    others = np.setdiff1d(rng.integers(0, 1 << 40, 3000), keys).astype(np.int64)
    assert np.all(lookup(tk, tv, others) == -1)
    assert lookup(tk, tv, np.empty(0, dtype=np.int64)).shape == (0,)


def test_append_new_matches_a_dictionary_over_hops():
    rng = np.random.default_rng(1)
    seeds = rng.choice(10_000, 50, replace=False).astype(np.int64)
    ref = {int(g): i for i, g in enumerate(seeds)}
    nodes = seeds.copy()
    table = build_map(nodes, nodes.shape[0])
    for hop in range(3):  # repeats within a hop and ids seen in earlier hops
        gids = rng.integers(0, 2_000 * (hop + 1), 400 * (hop + 1)).astype(np.int64)
        table = grow(*table, nodes, gids.shape[0])
        pos, fresh = append_new(*table, gids, nodes.shape[0])
        want_fresh = []
        for i, g in enumerate(gids.tolist()):
            if g not in ref:
                ref[g] = len(ref)
                want_fresh.append(i)
        assert fresh.tolist() == want_fresh
        assert pos.tolist() == [ref[g] for g in gids.tolist()]
        nodes = np.concatenate((nodes, gids[fresh]))
    assert np.array_equal(lookup(*table, nodes), np.arange(nodes.shape[0]))
