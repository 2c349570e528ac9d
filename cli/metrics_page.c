/* metrics_page.c: the status page of --metrics, one HTML document with its
 * style and script inline (no external assets), refreshing itself from
 * /status.json. */
#include <stdio.h>

#include "metrics.h"

/* Text placed in HTML: the five characters that could end it escaped. */
static void
html_text(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

static const char style[] =
	"body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}"
	"h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}"
	"table{border-collapse:collapse}"
	"th,td{border:1px solid #bbb;padding:.25em .6em;text-align:right}"
	"th{background:#e8eef6}th:first-child,td:first-child{text-align:left}"
	"tr.total td{font-weight:bold;background:#f4f4f4}"
	"#state{color:#666}";

/*
 * Everything from the server goes in with textContent or setAttribute,
 * never as markup: an address or a name cannot become HTML.
 */
static const char script[] =
	"'use strict';\n"
	"const cols=[['open','open'],['accepted','accepted'],"
	"['rejected','rejected (max conns)'],['denied','denied'],"
	"['closed','closed'],['errors','errors'],"
	"['tls_failures','TLS failures'],['bytes_in','bytes in'],"
	"['bytes_out','bytes out']];\n"
	"function el(tag,text,attrs){const e=document.createElement(tag);"
	"if(text!==undefined)e.textContent=text;"
	"for(const k in attrs||{})e.setAttribute(k,attrs[k]);return e;}\n"
	"function mean(sum,n){return n?(sum*1000/n).toFixed(3):'-';}\n"
	"function workers(d){const t=document.getElementById('workers');"
	"const h=el('tr');h.append(el('th','worker'));"
	"cols.forEach(c=>h.append(el('th',c[1])));"
	"h.append(el('th','mean latency (ms)'));"
	"const rows=[h],tot={};let n=0,sum=0;"
	"cols.forEach(c=>tot[c[0]]=0);"
	"d.workers.forEach((w,i)=>{const r=el('tr');"
	"r.append(el('td',String(i)));"
	"cols.forEach(c=>{tot[c[0]]+=w[c[0]];r.append(el('td',"
	"String(w[c[0]]),{'data-k':c[0],'data-w':String(i)}));});"
	"n+=w.latency_count;sum+=w.latency_sum;"
	"r.append(el('td',mean(w.latency_sum,w.latency_count)));"
	"rows.push(r);});"
	"const r=el('tr',undefined,{'class':'total'});"
	"r.append(el('td','total'));"
	"cols.forEach(c=>r.append(el('td',String(tot[c[0]]),"
	"{'data-k':c[0],'data-w':'total'})));"
	"r.append(el('td',mean(sum,n)));rows.push(r);"
	"t.replaceChildren(...rows);}\n"
	"function listeners(d){const t=document.getElementById('listeners');"
	"const h=el('tr');h.append(el('th','address'));"
	"h.append(el('th','accepted'));"
	"d.workers.forEach((w,i)=>h.append(el('th','worker '+i)));"
	"const rows=[h];d.listeners.forEach(l=>{const r=el('tr');"
	"r.append(el('td',l.addr));"
	"r.append(el('td',String(l.accepted.reduce((a,b)=>a+b,0)),"
	"{'data-listener':l.addr,'data-w':'total'}));"
	"l.accepted.forEach((a,i)=>r.append(el('td',String(a),"
	"{'data-listener':l.addr,'data-w':String(i)})));"
	"rows.push(r);});t.replaceChildren(...rows);}\n"
	"async function refresh(){const s=document.getElementById('state');"
	"try{const res=await fetch('/status.json',{cache:'no-store'});"
	"if(!res.ok)throw new Error('HTTP '+res.status);"
	"const d=await res.json();workers(d);listeners(d);"
	"s.textContent='updated '+new Date().toLocaleTimeString();"
	"document.body.setAttribute('data-loaded','1');}"
	"catch(e){s.textContent='not reachable: '+e.message;}}\n"
	"refresh();setInterval(refresh,2000);\n";

void
metrics_page(FILE *f, const char *title)
{
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
	      "charset=\"utf-8\">\n<title>",
	      f);
	html_text(f, title);
	fprintf(f, "</title>\n<style>%s</style></head>\n<body>\n<h1>", style);
	html_text(f, title);
	fputs("</h1>\n<p id=\"state\">loading...</p>\n"
	      "<h2>Workers</h2>\n<table id=\"workers\"></table>\n"
	      "<h2>Listeners</h2>\n<table id=\"listeners\"></table>\n"
	      "<p>Prometheus: <a href=\"/metrics\">/metrics</a>; "
	      "these numbers: <a href=\"/status.json\">/status.json</a>.</p>\n",
	      f);
	fprintf(f, "<script>\n%s</script>\n</body></html>\n", script);
}
