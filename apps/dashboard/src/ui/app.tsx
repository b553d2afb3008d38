import { type ReactElement, useCallback, useEffect, useState, useSyncExternalStore } from 'react';
import { fetchExecutions, fetchSuiteExecution } from './api.js';
import { Header } from './components/header.js';
import { RecoveryNotice } from './components/recovery-notice.js';
import { SuiteDetailView } from './components/suite-detail.js';
import { SuiteList } from './components/suite-list.js';
import { DashboardStore } from './dashboard-store.js';
import { DetailFeeds, SuiteFeeds } from './feeds.js';
import type { Suite } from './types.js';
import { useGapRecovery } from './use-gap-recovery.js';
import { useViewState } from './use-view-state.js';

/** The suite shown when the URL names none: the newest running one, else the newest. */
function defaultSuite(suites: readonly Suite[]): number | undefined {
  return (suites.find((s) => s.status === 'running') ?? suites[0])?.id;
}

/** The dashboard page; it expects an `ATPWebSocketProvider` above it. */
export function App(): ReactElement {
  const [store] = useState(() => new DashboardStore());
  const snapshot = useSyncExternalStore(store.subscribe, store.getSnapshot);
  const [view, setView] = useViewState();
  const selectedId = view.suite ?? defaultSuite(snapshot.suites);
  const unpin = useCallback(() => setView({ suite: undefined }), [setView]);
  const { notice, dismiss } = useGapRecovery(store, selectedId, unpin);

  useEffect(() => {
    const controller = new AbortController();
    fetchExecutions(controller.signal).then(
      (list) => store.loadSuites(list),
      () => store.markSuitesLoaded(),
    );
    return () => controller.abort();
  }, [store]);

  // Pin the default choice in the URL, so that a reload shows the same run even once it finished.
  useEffect(() => {
    if (view.suite === undefined && selectedId !== undefined) setView({ suite: selectedId });
  }, [view.suite, selectedId, setView]);

  useEffect(() => {
    if (selectedId === undefined) return;
    const controller = new AbortController();
    fetchSuiteExecution(selectedId, controller.signal).then(
      (record) => store.loadDetail(selectedId, record),
      () => {},
    );
    return () => controller.abort();
  }, [store, selectedId]);

  useEffect(() => {
    if (selectedId === undefined) store.select(undefined);
  }, [store, selectedId]);

  useEffect(() => {
    const timer = setInterval(() => store.refreshRate(), 2000);
    return () => clearInterval(timer);
  }, [store]);

  const suite = snapshot.suites.find((s) => s.id === selectedId);
  const detail = snapshot.detail?.suiteId === selectedId ? snapshot.detail : undefined;
  useEffect(() => {
    document.title = suite
      ? `${suite.name ?? 'Suite'} · ${Math.round(suite.progressPercent)}% · ATP`
      : 'ATP Dashboard';
  }, [suite]);

  return (
    <div className="app">
      <SuiteFeeds store={store} />
      {selectedId !== undefined && <DetailFeeds key={selectedId} store={store} suiteId={selectedId} />}
      <Header suites={snapshot.suites} rate={snapshot.rate} />
      {notice && <RecoveryNotice key={notice.id} notice={notice} onDismiss={dismiss} />}
      <div className="layout">
        <SuiteList
          suites={snapshot.suites}
          loaded={snapshot.suitesLoaded}
          selectedId={selectedId}
          onSelect={(id) => setView({ suite: id })}
        />
        <main className="main">
          {detail ? (
            <SuiteDetailView
              suite={suite}
              detail={detail}
              eventTypes={view.events}
              logLevels={view.levels}
              onEventTypesChange={(events) => setView({ events })}
              onLogLevelsChange={(levels) => setView({ levels })}
            />
          ) : selectedId !== undefined ? (
            <div className="placeholder">
              <p className="muted">Loading run #{selectedId}…</p>
            </div>
          ) : (
            <div className="placeholder">
              <h2>{snapshot.suitesLoaded ? 'Waiting for the first run' : 'Loading…'}</h2>
              <p className="muted">
                Runs stream in live over WebSocket. Start the simulated runner (on by default, off with{' '}
                <code>ATP_DEMO=0</code>) or publish to <code>POST /api/ws/publish</code>.
              </p>
            </div>
          )}
        </main>
      </div>
      <footer className="footer">
        <span>ATP real-time updates</span>
        <a href="/plain.html">Plain page</a>
        <a href="/api/executions">/api/executions</a>
        <a href="/api/ws/info">/api/ws/info</a>
      </footer>
    </div>
  );
}
