// A stand-in for the browser's EventSource: records listeners, lets a test emit messages or fail it.

export class FakeEventSource {
  static all = [];
  constructor(url) {
    this.url = url;
    this.listeners = {};
    this.closed = false;
    FakeEventSource.all.push(this);
  }
  addEventListener(type, fn) {
    (this.listeners[type] ??= []).push(fn);
  }
  close() {
    this.closed = true;
  }
  emit(type, data, lastEventId = "") {
    for (const fn of this.listeners[type] ?? []) fn({ type, data: JSON.stringify(data), lastEventId });
  }
  fail() {
    this.onerror?.({});
  }
}
