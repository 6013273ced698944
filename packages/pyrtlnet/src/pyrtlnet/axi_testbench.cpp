// Verilator testbench of the pyrtlnet AXI wrapper (module pyrtlnet_axi), written by pyrtlnet.
//
// It drives the design only through its AXI ports, as a DMA and a CPU would:
//   * the AXI4-Lite registers (offsets from axi_regs.h, generated from pyrtlnet.AXI_REGISTERS):
//     read-back of the frame format, then CONTROL = START | AUTO_RESTART;
//   * the input stream: every frame of frames.txt, a beat offered only when a random draw
//     passes (tvalid stalls), then held until accepted, as AXI requires;
//   * the output stream: tready low with the stall probability each cycle; every beat is
//     compared, under its care mask, with expected.txt (qnn-ref's values, computed in Python;
//     the mask leaves out padding lanes past the batch), and TLAST with the frame's last beat.
// After each malformed frame it polls STATUS until the expected error flag is set, checks the
// other is not, and clears it. At the end it checks BATCHES, CYCLES and that no error is left.
// Prints mismatch lines and one "RESULT PASS|FAIL ..." line; exit status 0 only on PASS.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "Vpyrtlnet_axi.h"
#include "verilated.h"
#include "axi_regs.h"

namespace {

struct Frame {
    int kind;  // 0: good, 1: too short, 2: too long
    std::vector<uint64_t> beats;
};

Vpyrtlnet_axi* top;
uint64_t cycle = 0;
uint64_t rng_state = 1;
double stall_in = 0.0, stall_out = 0.0;
long mismatches = 0;
const int kMaxReported = 10;

double uniform() {  // xorshift64*: reproducible across platforms
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return ((rng_state * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0);
}

void mismatch(const char* what, uint64_t got, uint64_t want, long where) {
    ++mismatches;
    if (mismatches <= kMaxReported) {
        std::printf("MISMATCH %s at %ld: got=%llx expected=%llx\n", what, where,
                    (unsigned long long)got, (unsigned long long)want);
    }
}

// Stream state.
std::vector<Frame> frames;
std::vector<uint64_t> expected, care;  // output beats and their cared-for bits
size_t frame_index = 0, beat_index = 0;
bool offering = false;
bool waiting_error = false;  // a malformed frame was sent: its flag must be seen and cleared
int waiting_kind = 0;
size_t out_index = 0;
int in_beats_cfg = 0, out_beats_cfg = 0;

// One clock cycle: stream drivers, then a rising edge. The AXI-Lite inputs are set by callers.
void tick() {
    if (!offering && !waiting_error && frame_index < frames.size()) {
        offering = uniform() >= stall_in;
    }
    if (offering) {
        const Frame& f = frames[frame_index];
        top->s_axis_tdata = f.beats[beat_index];
        top->s_axis_tlast = beat_index + 1 == f.beats.size();
    }
    top->s_axis_tvalid = offering;
    top->m_axis_tready = uniform() >= stall_out;
    top->clk = 0;
    top->eval();
    bool in_fire = top->s_axis_tvalid && top->s_axis_tready;
    if (top->m_axis_tvalid && top->m_axis_tready) {
        uint64_t got = top->m_axis_tdata;
        if (out_index >= expected.size()) {
            mismatch("extra output beat", got, 0, (long)out_index);
        } else if ((got & care[out_index]) != expected[out_index]) {
            mismatch("output beat", got, expected[out_index], (long)out_index);
        }
        bool last = (out_index + 1) % out_beats_cfg == 0;
        if (bool(top->m_axis_tlast) != last) mismatch("m_axis_tlast", top->m_axis_tlast, last, (long)out_index);
        ++out_index;
    }
    top->clk = 1;
    top->eval();
    ++cycle;
    if (in_fire) {
        offering = false;
        if (++beat_index == frames[frame_index].beats.size()) {
            if (frames[frame_index].kind != 0) {
                waiting_error = true;
                waiting_kind = frames[frame_index].kind;
            }
            beat_index = 0;
            ++frame_index;
        }
    }
}

uint32_t lite_read(uint32_t addr) {
    top->s_axi_araddr = addr;
    top->s_axi_arvalid = 1;
    top->s_axi_rready = 0;
    for (;;) {  // address phase: a handshake at this edge if arready is high now
        top->clk = 0;
        top->eval();
        bool fire = top->s_axi_arready;
        tick();
        if (fire) break;
    }
    top->s_axi_arvalid = 0;
    top->s_axi_rready = 1;
    for (;;) {
        top->clk = 0;
        top->eval();
        if (top->s_axi_rvalid) {
            uint32_t data = top->s_axi_rdata;
            tick();
            top->s_axi_rready = 0;
            return data;
        }
        tick();
    }
}

void lite_write(uint32_t addr, uint32_t data) {
    top->s_axi_awaddr = addr;
    top->s_axi_wdata = data;
    top->s_axi_wstrb = 0xf;
    top->s_axi_awvalid = 1;
    top->s_axi_wvalid = 1;
    top->s_axi_bready = 0;
    for (;;) {
        top->clk = 0;
        top->eval();
        bool fire = top->s_axi_awready && top->s_axi_wready;
        tick();
        if (fire) break;
    }
    top->s_axi_awvalid = 0;
    top->s_axi_wvalid = 0;
    top->s_axi_bready = 1;
    for (;;) {
        top->clk = 0;
        top->eval();
        bool fire = top->s_axi_bvalid;
        tick();
        if (fire) break;
    }
    top->s_axi_bready = 0;
}

void check_register(const char* name, uint32_t addr, uint32_t want) {
    uint32_t got = lite_read(addr);
    if (got != want) mismatch(name, got, want, (long)addr);
}

}  // namespace

int main(int argc, char** argv) {
    Verilated::commandArgs(argc, argv);
    unsigned long long seed = 1, max_cycles = 0;
    unsigned batch_size, array, in_beats, out_beats, format, cycles_per_batch, images;
    unsigned n_frames, n_good;
    FILE* config = std::fopen("config.txt", "r");
    if (!config || std::fscanf(config, "%u %u %u %u %u %u %u %u %u %lf %lf %llu %llu",
                               &batch_size, &array, &in_beats, &out_beats, &format,
                               &cycles_per_batch, &images, &n_frames, &n_good, &stall_in,
                               &stall_out, &seed, &max_cycles) != 13) {
        std::printf("RESULT FAIL cannot read config.txt\n");
        return 1;
    }
    std::fclose(config);
    rng_state = seed ? seed : 1;
    in_beats_cfg = (int)in_beats;
    out_beats_cfg = (int)out_beats;
    FILE* stimulus = std::fopen("frames.txt", "r");
    for (unsigned f = 0; stimulus && f < n_frames; ++f) {
        Frame frame;
        unsigned count;
        if (std::fscanf(stimulus, "%d %u", &frame.kind, &count) != 2) break;
        frame.beats.resize(count);
        for (unsigned i = 0; i < count; ++i) {
            unsigned long long word;
            if (std::fscanf(stimulus, "%llx", &word) != 1) break;
            frame.beats[i] = word;
        }
        frames.push_back(frame);
    }
    if (stimulus) std::fclose(stimulus);
    FILE* want = std::fopen("expected.txt", "r");
    for (unsigned long long word, mask; want && std::fscanf(want, "%llx %llx", &word, &mask) == 2;) {
        expected.push_back(word);
        care.push_back(mask);
    }
    if (want) std::fclose(want);
    if (frames.size() != n_frames || expected.size() != (size_t)n_good * out_beats) {
        std::printf("RESULT FAIL frames.txt or expected.txt is incomplete\n");
        return 1;
    }

    top = new Vpyrtlnet_axi;
    top->rst = 1;
    top->clk = 0;
    top->eval();
    tick();
    tick();
    top->rst = 0;

    check_register("BATCH_SIZE", REG_BATCH_SIZE, batch_size);
    check_register("ARRAY", REG_ARRAY, array);
    check_register("IN_BEATS", REG_IN_BEATS, in_beats);
    check_register("OUT_BEATS", REG_OUT_BEATS, out_beats);
    check_register("FORMAT", REG_FORMAT, format);
    check_register("STATUS idle", REG_STATUS, STATUS_IDLE_MASK);
    lite_write(REG_CONTROL, CONTROL_START_MASK | CONTROL_AUTO_RESTART_MASK);

    unsigned errors_seen = 0;
    bool timeout = false;
    while (out_index < expected.size() || frame_index < frames.size() || waiting_error) {
        if (cycle > max_cycles) {
            timeout = true;
            break;
        }
        if (waiting_error) {
            uint32_t flag = waiting_kind == 1 ? STATUS_ERR_SHORT_MASK : STATUS_ERR_LONG_MASK;
            uint32_t other = waiting_kind == 1 ? STATUS_ERR_LONG_MASK : STATUS_ERR_SHORT_MASK;
            uint32_t status = lite_read(REG_STATUS);
            if (status & other) mismatch("STATUS wrong error flag", status, flag, (long)frame_index);
            if (status & flag) {
                ++errors_seen;
                lite_write(REG_STATUS, flag);
                waiting_error = false;
            }
        } else {
            tick();
        }
    }
    // Let the last output beats settle, then read the counters.
    check_register("BATCHES", REG_BATCHES, n_good);
    check_register("CYCLES", REG_CYCLES, cycles_per_batch);
    uint32_t status = lite_read(REG_STATUS);
    uint32_t errors = STATUS_ERR_SHORT_MASK | STATUS_ERR_LONG_MASK;
    if (status & errors) mismatch("STATUS errors left", status, 0, 0);
    if (!(status & STATUS_DONE_MASK)) mismatch("STATUS done", status, STATUS_DONE_MASK, 0);
    if (timeout) std::printf("TIMEOUT after %llu cycles\n", (unsigned long long)cycle);
    bool pass = !timeout && mismatches == 0 && out_index == expected.size() &&
                errors_seen == n_frames - n_good;
    std::printf("RESULT %s images=%u frames=%u malformed=%u errors_seen=%u mismatches=%ld "
                "output_beats=%zu cycles=%llu\n",
                pass ? "PASS" : "FAIL", images, n_good, n_frames - n_good, errors_seen,
                mismatches, out_index, (unsigned long long)cycle);
    top->final();
    delete top;
    return pass ? 0 : 1;
}
