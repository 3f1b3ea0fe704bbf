"""tools/inspect/test_inspect.py — unit tests of the inspection tool's SASS parsing, loop finding and the CI
gate's comparison (no nvcc needed). Run: python3 -m unittest tools/inspect/test_inspect.py (from .ci/inspect.sh)."""
import copy
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kernel_inspect as ci  # noqa: E402

SASS = """
.text._Z1kv:
        /*0000*/                   S2R R0, SR_TID.X ;
.L_x_1:
        /*0010*/                   LDS.128 R4, [R2] ;
        /*0020*/                   LDS R8, [R3] ;
        /*0030*/                   FFMA R9, R8, R4, R9 ;
        /*0040*/                   FFMA R10, R8, R5, R10 ;
        /*0050*/                   IADD3 R2, R2, 0x10, RZ ;
        /*0060*/                   ISETP.NE.AND P0, PT, R2, R11, PT ;
        /*0070*/               @P0 BRA `(.L_x_1) ;
        /*0080*/                   FFMA R9, R8, R6, R9 ;
        /*0090*/                   LDG.E.64 R12, desc[UR4][R14.64] ;
        /*00a0*/                   STS [R1], R12 ;
        /*00b0*/                   BAR.SYNC.DEFER_BLOCKING 0x0 ;
        /*00c0*/                   ISETP.NE.AND P1, PT, R3, R11, PT ;
        /*00d0*/               @P1 BRA `(.L_x_1) ;
        /*00e0*/                   EXIT ;
.L_x_2:
        /*00f0*/                   BRA `(.L_x_2);
"""


class SassTest(unittest.TestCase):
    def test_fmas_per_tap_from_the_specialisation(self):
        # tiled multiplies kCpt channels per tap: its last template argument, whatever the element type.
        self.assertEqual(ci.fmas_per_tap("tiled_kernel<float, 8, 3>"), 8)
        self.assertEqual(ci.fmas_per_tap("tiled_kernel<float, 2, 0>"), 2)
        self.assertEqual(ci.fmas_per_tap("tiled_kernel<float, 8>"), 8)
        self.assertEqual(ci.fmas_per_tap("tiled_kernel<convarith::kernels::bf16, 4>"), 4)
        self.assertEqual(ci.fmas_per_tap("tiled_kernel<2>"), 2)
        self.assertEqual(ci.fmas_per_tap("direct_kernel<float, int>"), 1)
        self.assertEqual(ci.fmas_per_tap("igemm_kernel<8>"), 1)

    def test_loops_and_mix(self):
        funcs = ci.parse_sass(SASS)
        self.assertIn("_Z1kv", funcs)
        f = ci.analyse_function(funcs["_Z1kv"], 2)
        # Loops: [0x10, 0x70] (innermost), [0x10, 0xd0] merged on the same header -> one loop [0x10, 0xd0]
        # because both back edges target .L_x_1; and the self-loop at 0xf0.
        self.assertEqual(f["loops_total"], 2)
        hot = f["hot_loop"]
        self.assertEqual(hot["start"], "0x0010")
        self.assertEqual(hot["ffma"], 3)
        self.assertEqual(hot["lds"], {"128": 1, "32": 1})
        self.assertEqual(hot["ldg"], {"64": 1})
        self.assertEqual(hot["sts"], {"32": 1})
        self.assertEqual(hot["barrier"], 1)
        self.assertEqual(hot["branch"], 2)
        self.assertEqual(hot["instructions"], 13)
        self.assertAlmostEqual(hot["fma_share"], round(3 / 13, 4))

    def test_nested_loop_is_innermost_and_has_a_remainder_body(self):
        sass = SASS.replace("@P1 BRA `(.L_x_1)", "@P1 BRA `(.L_x_0)").replace(
            "/*0000*/                   S2R R0, SR_TID.X ;", ".L_x_0:\n        /*0000*/   S2R R0, SR_TID.X ;")
        f = ci.analyse_function(ci.parse_sass(sass)["_Z1kv"], 1)
        self.assertEqual(f["hot_loop"]["start"], "0x0010")
        self.assertEqual(f["hot_loop"]["end"], "0x0070")
        path = f["tap_path"]
        self.assertEqual(path["unrolled_loops"][0]["taps"], 2)
        # The outer loop's own body: 0x00, 0x80..0xd0 -> 7 instructions, one FFMA (one tap at 1 FMA per tap).
        self.assertEqual(path["remainder_body"]["instructions"], 7)
        self.assertEqual(path["remainder_body"]["taps"], 1)


def kernel(regs=40, spills=0, share=0.5, insts=100):
    return {"regs": regs, "spills": spills, "spill_stores": spills, "spill_loads": 0,
            "hot_loop": {"fma_share": share, "instructions": insts}}


class GateTest(unittest.TestCase):
    def setUp(self):
        self.base = {"kernels": {"sm_90/a": kernel(), "sm_90/b": kernel(regs=100)}}

    def check(self, **changes):
        rep = copy.deepcopy(self.base)
        for key, k in changes.items():
            rep["kernels"][key] = k
        return ci.check(rep, self.base)

    def test_same_passes(self):
        self.assertEqual(self.check()[0], [])

    def test_registers_within_and_beyond_tolerance(self):
        self.assertEqual(self.check(**{"sm_90/a": kernel(regs=44)})[0], [])      # +4 allowed
        p = self.check(**{"sm_90/a": kernel(regs=45)})[0]
        self.assertEqual(len(p), 1)
        self.assertIn("registers 45, baseline 40", p[0])
        self.assertEqual(self.check(**{"sm_90/b": kernel(regs=110)})[0], [])     # 10 % of 100
        self.assertEqual(len(self.check(**{"sm_90/b": kernel(regs=111)})[0]), 1)

    def test_spills_fail(self):
        p = self.check(**{"sm_90/a": kernel(spills=8)})[0]
        self.assertEqual(len(p), 1)
        self.assertIn("spills 8 bytes", p[0])

    def test_fma_share_drop(self):
        self.assertEqual(self.check(**{"sm_90/a": kernel(share=0.485)})[0], [])
        p = self.check(**{"sm_90/a": kernel(share=0.47, insts=120)})[0]
        self.assertEqual(len(p), 1)
        self.assertIn("hot-loop FMA share 47.0 %, baseline 50.0 %", p[0])

    def test_new_kernel_is_a_note_but_its_spills_fail(self):
        problems, notes = self.check(**{"sm_90/c": kernel(spills=4)})
        self.assertEqual(len(problems), 1)
        self.assertTrue(any("new kernel" in n for n in notes))


class OccupancyTest(unittest.TestCase):
    PROF = {"warp_size": 32, "reg_alloc_unit": 256, "regs_per_sm": 65536, "regs_per_block": 65536,
            "max_threads_per_sm": 2048, "smem_per_sm": 233472, "smem_reserved_per_block": 1024,
            "max_blocks_per_sm": 32}

    def test_limits(self):
        o = ci.occupancy(self.PROF, 64, 256, 0)   # 64 regs x 256 threads = 16384 regs: 4 blocks
        self.assertEqual((o["blocks_per_sm"], o["limited_by"]), (4, "registers"))
        self.assertEqual(o["occupancy"], 0.5)
        o = ci.occupancy(self.PROF, 32, 128, 48 * 1024)  # smem: 233472 / 50176 = 4 blocks
        self.assertEqual((o["blocks_per_sm"], o["limited_by"]), (4, "shared memory"))
        o = ci.occupancy(self.PROF, 16, 256, 0)
        self.assertEqual((o["blocks_per_sm"], o["limited_by"]), (8, "threads"))


if __name__ == "__main__":
    unittest.main()
