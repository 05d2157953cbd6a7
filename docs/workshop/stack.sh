# Sourced by the workshop's commands (`. docs/workshop/stack.sh`, from the clone's root): where your running
# stack is, read from the stack.json that `make run` writes. ZT_LOCAL_DIR, when set, is where the stack keeps its
# state (a second clone or a test's stack); otherwise .local/, as `make run` uses.
STACK_DIR=${ZT_LOCAL_DIR:-.local}
if [ ! -f "$STACK_DIR/stack.json" ]; then
  echo "no $STACK_DIR/stack.json: start the stack with \`make run\` in another terminal first" >&2
  return 1
fi
# `stack api` prints one value of stack.json (a list one item a line).
stack() {
  python3 -c 'import json, sys; v = json.load(open(sys.argv[1]))[sys.argv[2]]; print("\n".join(v) if isinstance(v, list) else v)' \
    "$STACK_DIR/stack.json" "$1"
}
WEB=$(stack web)
API=$(stack api)
DOWNSTREAM=$(stack downstream_api)
FRONT=$(stack emulator_front_channel)
CA=$(stack ca_bundle)
echo "web $WEB | api $API | downstream-api $DOWNSTREAM | identity emulator $FRONT"
