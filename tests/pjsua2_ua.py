#!/usr/bin/env python3
"""An auto-answering pjsua2 (PyPI `pjsua2-python`) phone for the interop tests.

Listens on 127.0.0.1 (UDP, a free port), answers the first INVITE with 180 then 200, plays a
looping 440 Hz tone, records what it hears, and reports on stdout, one JSON object per line:

    {"ready": {"port": PORT}}
    {"result": {"answered", "confirmed", "ended_by", "last_status", "codec",
                "rx_packets", "tx_packets", "rx_rms", "rx_seconds", "error"}}

`ended_by` is "pjsua2" when it sent the BYE itself (--hangup-after), "remote" otherwise.
Audio: the null sound device (no hardware), VAD off (`noVad`: with VAD on, pjsua2 stops sending
RTP after ~0.6 s of silence). Everything stays on 127.0.0.1; it exits after --max-secs at the
latest. pjsua's own log goes to DIR/pjsua2.log.
"""

import argparse
import gc
import json
import math
import os
import struct
import sys
import time
import wave

import pjsua2 as pj


# Our reports get the real stdout; fd 1 goes to stderr, where pjlib writes its start-up lines.
REPORT = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)


def say(obj):
    REPORT.write(json.dumps(obj) + "\n")
    REPORT.flush()


def write_tone(path, seconds=2, rate=8000, freq=440.0, amplitude=8000):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = bytearray()
        for i in range(rate * seconds):
            v = int(amplitude * math.sin(2 * math.pi * freq * i / rate))
            frames += struct.pack("<h", v)
        w.writeframes(bytes(frames))


def wav_rms(path):
    """RMS and length of a 16-bit WAV, read from the data chunk (header sizes not trusted:
    the recorder may still be open)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return 0.0, 0.0
    idx = data.find(b"data")
    if idx < 0 or len(data) < idx + 8:
        return 0.0, 0.0
    rate = struct.unpack_from("<I", data, 24)[0] if len(data) >= 28 else 16000
    channels = struct.unpack_from("<H", data, 22)[0] if len(data) >= 24 else 1
    pcm = data[idx + 8:]
    n = len(pcm) // 2
    if n == 0:
        return 0.0, 0.0
    samples = struct.unpack("<%dh" % n, pcm[: n * 2])
    rms = math.sqrt(sum(s * s for s in samples) / n)
    return rms, n / float(max(rate, 1) * max(channels, 1))


class State:
    def __init__(self):
        self.call = None
        self.answered = False
        self.confirmed_at = None
        self.disconnected_at = None
        self.ended_by = None
        self.we_hung_up = False
        self.last_status = None
        self.codec = None
        self.rx_packets = 0
        self.tx_packets = 0
        self.media_index = None
        self.error = None


class Call(pj.Call):
    def __init__(self, acc, call_id, st, player, recorder):
        pj.Call.__init__(self, acc, call_id)
        self.st = st
        self.player = player
        self.recorder = recorder

    def sample_stats(self):
        st = self.st
        if st.media_index is None:
            return
        try:
            stat = self.getStreamStat(st.media_index)
            st.rx_packets = max(st.rx_packets, stat.rtcp.rxStat.pkt)
            st.tx_packets = max(st.tx_packets, stat.rtcp.txStat.pkt)
        except pj.Error:
            pass

    def onCallState(self, prm):
        st = self.st
        ci = self.getInfo()
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED and st.confirmed_at is None:
            st.confirmed_at = time.monotonic()
        elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.sample_stats()
            st.last_status = ci.lastStatusCode
            st.ended_by = "pjsua2" if st.we_hung_up else "remote"
            st.disconnected_at = time.monotonic()

    def onCallMediaState(self, prm):
        st = self.st
        ci = self.getInfo()
        for mi in ci.media:
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                am = self.getAudioMedia(mi.index)
                self.player.startTransmit(am)
                am.startTransmit(self.recorder)
                st.media_index = mi.index
                try:
                    st.codec = self.getStreamInfo(mi.index).codecName
                except pj.Error:
                    pass


class Account(pj.Account):
    def __init__(self, st, player, recorder):
        pj.Account.__init__(self)
        self.st = st
        self.player = player
        self.recorder = recorder

    def onIncomingCall(self, prm):
        call = Call(self, prm.callId, self.st, self.player, self.recorder)
        op = pj.CallOpParam()
        if self.st.call is not None:
            op.statusCode = 486
            call.answer(op)
            return
        self.st.call = call
        op.statusCode = 180
        call.answer(op)
        op = pj.CallOpParam()
        op.statusCode = 200
        call.answer(op)
        self.st.answered = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True, help="folder for the tone, the recording and the log")
    ap.add_argument("--hangup-after", type=float, default=0.0,
                    help="send BYE this many seconds after the call is confirmed (0: never)")
    ap.add_argument("--max-secs", type=float, default=30.0, help="exit after this long at most")
    args = ap.parse_args()
    deadline = time.monotonic() + args.max_secs

    tone = os.path.join(args.dir, "tone.wav")
    heard = os.path.join(args.dir, "heard.wav")
    write_tone(tone)

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.userAgent = "pjsua2-interop"
    cfg.logConfig.level = 4
    cfg.logConfig.consoleLevel = 0
    cfg.logConfig.filename = os.path.join(args.dir, "pjsua2.log")
    cfg.medConfig.noVad = True
    ep.libInit(cfg)

    tcfg = pj.TransportConfig()
    tcfg.port = 0
    tcfg.boundAddress = "127.0.0.1"
    tid = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    port = int(ep.transportGetInfo(tid).localName.rsplit(":", 1)[1])
    ep.libStart()
    ep.audDevManager().setNullDev()

    player = pj.AudioMediaPlayer()
    player.createPlayer(tone)  # loops by default
    recorder = pj.AudioMediaRecorder()
    recorder.createRecorder(heard)

    st = State()
    acfg = pj.AccountConfig()
    acfg.idUri = "sip:bob@127.0.0.1:%d" % port
    acfg.sipConfig.transportId = tid
    acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    acfg.mediaConfig.transportConfig.port = 0
    acc = Account(st, player, recorder)
    acc.create(acfg)

    say({"ready": {"port": port}})

    last_sample = 0.0
    linger_until = None
    while True:
        ep.libHandleEvents(10)
        now = time.monotonic()
        if now > deadline:
            st.error = "timed out after %.0f s" % args.max_secs
            break
        call = st.call
        if call is not None and st.disconnected_at is None and now - last_sample > 0.1:
            call.sample_stats()
            last_sample = now
        if (args.hangup_after > 0 and st.confirmed_at is not None and not st.we_hung_up
                and st.disconnected_at is None and now - st.confirmed_at >= args.hangup_after):
            st.we_hung_up = True
            op = pj.CallOpParam()
            op.statusCode = 200
            call.hangup(op)
        if st.disconnected_at is not None:
            # Let the BYE transaction finish (its 200 or retransmissions) before exiting.
            if linger_until is None:
                linger_until = now + 0.5
            elif now > linger_until:
                break

    # Drop every reference to the call and the recorder: the recorder's destructor writes
    # the WAV header, and pjsua2 objects must go before libDestroy.
    call = None
    st.call = None
    acc.player = acc.recorder = None
    del recorder
    gc.collect()
    rms, seconds = wav_rms(heard)
    say({"result": {
        "answered": st.answered,
        "confirmed": st.confirmed_at is not None,
        "ended_by": st.ended_by,
        "last_status": st.last_status,
        "codec": st.codec,
        "rx_packets": st.rx_packets,
        "tx_packets": st.tx_packets,
        "rx_rms": round(rms, 1),
        "rx_seconds": round(seconds, 2),
        "error": st.error,
    }})
    acc.shutdown()
    del acc, player
    gc.collect()
    ep.libDestroy()


if __name__ == "__main__":
    main()
