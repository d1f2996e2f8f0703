"use client";
import { useState } from "react";
import { ModelForm } from "~/components/model/model-form";
import { ImportForm } from "./import-form";
import { Scan } from "./scan";

export function DiscoverPage() {
  const [manual, setManual] = useState(false);
  return (
    <>
      <div className="page-head">
        <h1>Discover &amp; import</h1>
      </div>
      <Scan />
      <section id="import" className="panel" aria-labelledby="import-title">
        <h2 id="import-title">Import from the previous setup</h2>
        <p className="muted" style={{ fontSize: "0.88rem" }}>
          Upload <code>model_registry.json</code> and <code>runtime_settings.json</code> from your previous Synapse Engine setup, as they are. Models already in the registry are updated; nulls mean &ldquo;use the global default&rdquo;.
        </p>
        <ImportForm />
      </section>
      <section className="panel" aria-labelledby="manual-title">
        <div className="panel-head">
          <h2 id="manual-title">Add a model by path</h2>
          <button type="button" className="btn btn-sm" onClick={() => setManual((m) => !m)} aria-expanded={manual} aria-controls="manual-form">
            {manual ? "Close" : "Open form"}
          </button>
        </div>
        {manual ? (
          <div id="manual-form">
            <ModelForm onSaved={() => setManual(false)} />
          </div>
        ) : (
          <p className="muted" style={{ fontSize: "0.88rem", margin: 0 }}>
            For a file the scan does not see, or to set everything by hand.
          </p>
        )}
      </section>
    </>
  );
}
