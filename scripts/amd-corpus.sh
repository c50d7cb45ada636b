#!/usr/bin/env bash
# Generates a labelled answering-machine-detection corpus with espeak-ng and sox.
#
#   scripts/amd-corpus.sh OUTDIR [N] [SEED]      (N default 120, SEED default 1)
#
# Writes OUTDIR/NNN-<kind>.wav and OUTDIR/labels.csv (file,label,greeting_end_ms,beep_ms), the
# format `switchboard amd eval` reads. Deterministic for a given N and SEED (a seeded LCG in the
# script, sox runs with -R). Needs espeak-ng and sox (Debian packages of the same names).
#
# Every file is 8 kHz speech from a random espeak-ng voice / variant / rate / pitch, band-passed
# to the telephone band (300-3400 Hz), mixed with white/pink/brown noise at an SNR of 10-40 dB,
# sometimes round-tripped through mu-law, and written in one of several WAV encodings and rates
# (8 kHz s16, mu-law, A-law, 16 kHz, 44.1 kHz stereo float, 48 kHz 24-bit) to exercise the reader.
#
# Kinds (per block of 20 files): 8 humans (short greetings, a quarter answering twice
# "Hello? ... Hello?"), 6 voicemail greetings of 3-12 s with a beep (425-2000 Hz, 120-1000 ms),
# 2 without a beep, 1 carrier announcement, 1 dead air, 1 fax CNG, 1 fax CED.
#
# Labels: greeting_end_ms is the end of the (first) greeting's speech, measured on the trimmed
# speech; beep_ms is the beep's start.
set -euo pipefail

OUT=${1:?usage: amd-corpus.sh OUTDIR [N] [SEED]}
N=${2:-120}
SEED=${3:-1}
command -v espeak-ng >/dev/null || { echo "amd-corpus: espeak-ng not found" >&2; exit 2; }
command -v sox >/dev/null || { echo "amd-corpus: sox not found" >&2; exit 2; }
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# Our own generator (a 31-bit LCG) in the main shell: bash reseeds RANDOM in every subshell,
# so values drawn inside $(...) would not be reproducible. r A B and p ITEMS... set R.
STATE=$((SEED * 7919 + 12345))
next() { STATE=$(((STATE * 1103515245 + 12345) % 2147483648)); }
r() { next; R=$(($1 + (STATE >> 8) % ($2 - $1 + 1))); }
p() { local a=("$@"); next; R=${a[(STATE >> 8) % ${#a[@]}]}; }
ms_of() { soxi -D "$1" | awk '{printf "%d", $1 * 1000 + 0.5}'; }
secs() { awk -v m="$1" 'BEGIN{printf "%.3f", m / 1000}'; }
S8=(-r 8000 -c 1 -b 16 -e signed-integer)

VOICES=(en-us en-gb en-gb-scotland en-gb-x-rp en-029 en-us-nyc en-gb-x-gbcwmd en-gb-x-gbclan)
VARIANTS=("" +f1 +f2 +f3 +f4 +f5 +m1 +m2 +m3 +m4 +m5 +m6 +m7 +klatt +klatt2 +croak +whisperf)
HUMAN=("Hello?" "Hello." "Yes?" "Hi, this is Dana." "Hello, Mark speaking." "Yeah, hello?" "Hi."
  "Good morning." "Speaking." "Hello, who is this?" "Hey." "Yes, hello?" "Hello there." "Hi, Sarah here.")
INTRO=("Hi, you have reached the voicemail of Alex Johnson."
  "You've reached the Miller family."
  "Thank you for calling Bright Dental."
  "Hey, it's Jordan."
  "Hello, this is Priya Patel."
  "The person you are trying to reach is not available."
  "Hi, you've got Chris, from the sales team at Northwind."
  "You have reached extension four two one seven.")
BODY=("I'm not available to take your call right now."
  "We can't come to the phone at the moment."
  "Our office is currently closed. Our hours are nine to five, Monday to Friday."
  "Please leave your name, number and a short message, and I will get back to you as soon as possible."
  "At the tone, please record your message."
  "When you have finished recording, you may hang up, or press pound for more options."
  "Sorry I missed your call."
  "If this is an emergency, please hang up and dial nine one one."
  "I'm away from my desk or on another call."
  "Have a great day.")
CLOSE=("Leave a message after the beep." "Thanks, bye." "Please leave a message." "Talk to you soon.")
CARRIER=("We're sorry. The number you have dialed is not in service. Please check the number and dial again."
  "The number you have called has been disconnected or is no longer in service."
  "The wireless customer you are calling is not available. Please try your call again later."
  "All circuits are busy now. Please try your call again later.")
BEEPS=(425 440 480 500 600 700 750 800 850 900 1000 1200 1400 1500 1600 1800 2000)

# speak OUT TEXT: a random voice, trimmed of leading/trailing silence, 8 kHz, peak -LVL dBFS.
speak() {
  local out=$1 text=$2
  espeak-ng -v "$VOICE" -s "$RATE" -p "$PITCH" -w "$WORK/raw.wav" "$text"
  sox -R "$WORK/raw.wav" "${S8[@]}" "$out" silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse \
    norm "-$LVL"
}
silence() { sox -R -n "${S8[@]}" "$1" trim 0 "$(secs "$2")"; }
tone() { sox -R -n "${S8[@]}" "$1" synth "$(secs "$3")" sine "$2" vol "$4"; }

echo "file,label,greeting_end_ms,beep_ms" >"$OUT/labels.csv"
for ((i = 0; i < N; i++)); do
  slot=$((i % 20))
  if ((slot < 8)); then kind=human
  elif ((slot < 14)); then kind=vm-beep
  elif ((slot < 16)); then kind=vm-silence
  elif ((slot == 16)); then kind=carrier
  elif ((slot == 17)); then kind=dead-air
  elif ((slot == 18)); then kind=fax-cng
  else kind=fax-ced; fi
  p "${VOICES[@]}"; VOICE=$R
  p "${VARIANTS[@]}"; VOICE=$VOICE$R
  r 25 75; PITCH=$R
  r 3 14; LVL=$R
  p 40 30 25 20 15 10; snr=$R
  parts=()
  label=machine ge="" beep=""
  case $kind in
    human)
      r 130 200; RATE=$R
      r 300 1500; lead=$R
      silence "$WORK/lead.wav" "$lead"
      r 0 3
      if ((R == 0)); then
        p "Hello?" "Hello." "Hi?" "Yes?"; speak "$WORK/s1.wav" "$R"
        p "Hello?" "Hello? Anyone there?" "Hello?"; speak "$WORK/s2.wav" "$R"
        r 1000 2000; silence "$WORK/gap.wav" "$R"
        parts=("$WORK/lead.wav" "$WORK/s1.wav" "$WORK/gap.wav" "$WORK/s2.wav")
      else
        p "${HUMAN[@]}"; speak "$WORK/s1.wav" "$R"
        parts=("$WORK/lead.wav" "$WORK/s1.wav")
      fi
      ge=$((lead + $(ms_of "$WORK/s1.wav")))
      silence "$WORK/tail.wav" 3000
      parts+=("$WORK/tail.wav")
      label=human
      ;;
    vm-beep | vm-silence)
      r 140 190; RATE=$R
      r 3 12; target=$R
      words_needed=$((target * RATE * 3 / 4 / 60))
      p "${INTRO[@]}"; text=$R
      while (($(wc -w <<<"$text") < words_needed)); do p "${BODY[@]}"; text="$text $R"; done
      p "${CLOSE[@]}"; text="$text $R"
      r 200 1000; lead=$R
      silence "$WORK/lead.wav" "$lead"
      speak "$WORK/s1.wav" "$text"
      ge=$((lead + $(ms_of "$WORK/s1.wav")))
      r 200 1000; gap=$R
      silence "$WORK/gap.wav" "$gap"
      parts=("$WORK/lead.wav" "$WORK/s1.wav" "$WORK/gap.wav")
      if [[ $kind == vm-beep ]]; then
        beep=$((ge + gap))
        p "${BEEPS[@]}"; hz=$R
        r 120 1000; len=$R
        r 15 60; tone "$WORK/beep.wav" "$hz" "$len" "0.$R"
        parts+=("$WORK/beep.wav")
      fi
      silence "$WORK/tail.wav" 2500
      parts+=("$WORK/tail.wav")
      ;;
    carrier)
      r 150 180; RATE=$R
      r 200 800; lead=$R
      silence "$WORK/lead.wav" "$lead"
      p "${CARRIER[@]}"; speak "$WORK/s1.wav" "$R"
      ge=$((lead + $(ms_of "$WORK/s1.wav")))
      silence "$WORK/tail.wav" 2500
      parts=("$WORK/lead.wav" "$WORK/s1.wav" "$WORK/tail.wav")
      ;;
    dead-air)
      silence "$WORK/lead.wav" 6000
      parts=("$WORK/lead.wav")
      label=unknown
      ;;
    fax-cng)
      r 300 2000; silence "$WORK/lead.wav" "$R"
      r 1090 1110; tone "$WORK/t.wav" "$R" 500 0.4
      silence "$WORK/off.wav" 3000
      parts=("$WORK/lead.wav" "$WORK/t.wav" "$WORK/off.wav" "$WORK/t.wav" "$WORK/off.wav")
      label=fax
      ;;
    fax-ced)
      r 200 1000; silence "$WORK/lead.wav" "$R"
      r 2600 3300; tone "$WORK/t.wav" 2100 "$R" 0.4
      silence "$WORK/tail.wav" 1000
      parts=("$WORK/lead.wav" "$WORK/t.wav" "$WORK/tail.wav")
      label=fax
      ;;
  esac
  sox -R "${parts[@]}" "$WORK/clean.wav"
  dur=$(soxi -D "$WORK/clean.wav")
  # Noise relative to the speech peak (-LVL dBFS) minus ~12 dB of crest factor.
  nvol=$(awk -v l="$LVL" -v s="$snr" 'BEGIN{printf "%.6f", 1.7 * 10^(-(l + 12 + s) / 20)}')
  p whitenoise pinknoise brownnoise
  sox -R -n "${S8[@]}" "$WORK/noise.wav" synth "$dur" "$R" vol "$nvol"
  sox -R -m -v 1 "$WORK/clean.wav" -v 1 "$WORK/noise.wav" "${S8[@]}" "$WORK/mix.wav" sinc 300-3400
  r 0 2
  if ((R == 0)); then # mu-law round trip
    sox -R "$WORK/mix.wav" -t wav -e u-law "$WORK/ul.wav"
    sox -R "$WORK/ul.wav" "${S8[@]}" "$WORK/mix.wav"
  fi
  name=$(printf "%03d-%s.wav" "$i" "$kind")
  r 0 19
  case $R in
    0 | 1 | 2) sox -R "$WORK/mix.wav" -e u-law "$OUT/$name" ;;
    3) sox -R "$WORK/mix.wav" -e a-law "$OUT/$name" ;;
    4 | 5) sox -R "$WORK/mix.wav" -r 16000 "$OUT/$name" ;;
    6) sox -R "$WORK/mix.wav" -r 44100 -c 2 -e floating-point -b 32 "$OUT/$name" ;;
    7) sox -R "$WORK/mix.wav" -r 48000 -b 24 "$OUT/$name" ;;
    *) cp "$WORK/mix.wav" "$OUT/$name" ;;
  esac
  echo "$name,$label,$ge,$beep" >>"$OUT/labels.csv"
done
echo "amd-corpus: $N files in $OUT (seed $SEED)" >&2
