"""chat.test's helper.

`same EXE CKPT CONTEXT SCRIPT REPLIES`: replays the conversation chat held
(the user's lines of SCRIPT, its REPLIES), keeping the turns chat keeps in a
context of CONTEXT characters (when the turns read so far, the new user turn
with "S: " and the room for a reply would not fit, the oldest turns are
dropped), and checks that each reply is what `EXE generate --greedy`
continues from the kept transcript."""
import subprocess
import sys

MAX_REPLY = 160

if sys.argv[1] == "same":
    exe, ckpt, context = sys.argv[2], sys.argv[3], int(sys.argv[4])
    users = open(sys.argv[5], encoding="utf-8").read().split("\n")[:-1]
    replies = open(sys.argv[6], encoding="utf-8").read().split("\n")[:-1]
    assert len(users) == len(replies), (users, replies)
    room = min(MAX_REPLY, context // 2)
    turns, read, same = [], 0, 0
    for user, reply in zip(users, replies):
        heard = f"U: {user}\nS: "
        if read + len(heard) + room > context:
            kept, first = 0, len(turns)
            while first > 0 and kept + len(turns[first - 1]) + len(heard) + room <= context:
                first -= 1
                kept += len(turns[first])
            turns, read = turns[first:], kept
        prompt = "".join(turns) + heard
        out = subprocess.run([exe, "generate", "--checkpoint", ckpt, "--greedy",
                              "--prompt", prompt, "--length", str(len(reply))],
                             check=True, capture_output=True, text=True).stdout
        assert out.startswith(prompt), (out, prompt)
        got = out[len(prompt):len(prompt) + len(reply)]
        same += got == reply
        if got != reply:
            print(f"differs: {prompt!r} -> chat {reply!r}, generate {got!r}")
        turns += [f"U: {user}\n", f"S: {reply}\n"]
        read += len(heard) + len(reply) + 1
    print(f"{same} of {len(replies)} replies are generate's greedy"
          " continuation of the kept transcript")
