#!/bin/bash
cd /work/wt-wrap70
for round in 1 2; do
  for v in base new; do
    b=/work/wt-wrap70/build; [ $v = base ] && b=/tmp/wrap70-ab/base
    mkdir -p /tmp/wrap70-ab/$v-$round
    { uptime; python3 bench/per_member.py $b --kinds rsa2048-pkcs1 rsa2048 --n 10000 --out /tmp/wrap70-ab/$v-$round; uptime; } > /tmp/wrap70-ab/$v-$round/log 2>&1
  done
done
echo done > /tmp/wrap70-ab/finished
