// The connection indicator's words: its accessible name starts with "Connected",
// "Reconnecting" or "Disconnected", and the tooltip says since when / in how long / why.

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/**
 * `state` is the connection's snapshot: { phase, connectedAt, lastHeartbeatAt, retryAt, attempt, reason }.
 * phase: "connecting" | "connected" | "reconnecting" | "disconnected".
 */
export function describeStatus(state, now = Date.now(), formatTime = clock) {
  switch (state.phase) {
    case "connected": {
      const beat = state.lastHeartbeatAt ? `, last heartbeat ${formatTime(state.lastHeartbeatAt)}` : "";
      return { tone: "ok", label: `Connected since ${formatTime(state.connectedAt)}${beat}` };
    }
    case "reconnecting": {
      const seconds = Math.max(0, Math.ceil((state.retryAt - now) / 1000));
      const why = state.reason ? ` (${state.reason})` : "";
      const last = state.lastHeartbeatAt ? `; last heartbeat ${formatTime(state.lastHeartbeatAt)}` : "";
      const when = seconds > 0 ? `in ${seconds} s` : "now";
      return { tone: "bad", label: `Reconnecting ${when}, attempt ${state.attempt}${why}${last}` };
    }
    case "connecting":
      return { tone: "bad", label: "Disconnected: connecting to the event stream" };
    default:
      return { tone: "bad", label: `Disconnected${state.reason ? `: ${state.reason}` : ""}` };
  }
}

/** Reconnect when nothing (not even a heartbeat) arrived for about two intervals. */
export function heartbeatOverdue(lastMessageAt, now, heartbeatIntervalMs, factor = 2) {
  return now - lastMessageAt > factor * heartbeatIntervalMs + Math.min(1000, heartbeatIntervalMs / 2);
}
