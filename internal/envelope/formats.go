package envelope

import (
	"crypto/sha1"
	"fmt"
	"strconv"
	"strings"
)

// fieldMap maps JSON member names to the builder fields they fill. A short
// list compared by length first beats a map for these few keys.
type fieldMap []fieldName

type fieldName struct {
	name  string
	field int
}

func (m fieldMap) lookup(key []byte) (int, bool) {
	for _, f := range m {
		if len(f.name) == len(key) && f.name == string(key) {
			return f.field, true
		}
	}
	return 0, false
}

// requiredFields names, per builder field, the vendor field that must be
// present (empty: optional).
type requiredFields [nField]string

// objectMap describes an object: its fields, and members that are objects
// to descend into.
type objectMap struct {
	fields fieldMap
	nested []nestedObject
}

type nestedObject struct {
	name string
	m    *objectMap
	// strict: a value other than an object (or null) is wrong_type, for
	// objects holding required fields (OneWelcome's metadata). Otherwise
	// it only means the optional fields inside are absent (a
	// fulfillmenttools payload need not be an object).
	strict bool
}

func (m *objectMap) sub(key []byte) *nestedObject {
	for i := range m.nested {
		if n := &m.nested[i]; len(n.name) == len(key) && n.name == string(key) {
			return n
		}
	}
	return nil
}

// collect walks the object under it and stores the members named in m,
// returning the index past the object. A member of the wrong type yields
// in bad what it must be ("metadata.eventId must be a string", "metadata
// must be an object"); null counts as absent.
func (b *builder) collect(it objIter, m *objectMap) (end int, bad string, err *syntaxError) {
	for {
		key, ok, err := it.nextKey()
		if err != nil || !ok {
			return it.i, bad, err
		}
		sub := m.sub(key)
		if sub != nil {
			if child, isObj := it.child(); isObj {
				end, childBad, err := b.collect(child, sub.m)
				it.i = end
				if err != nil {
					return it.i, bad, err
				}
				if bad == "" && childBad != "" {
					bad = string(key) + "." + childBad
				}
				continue
			}
		}
		vs, ve, err := it.skip()
		if err != nil {
			return it.i, bad, err
		}
		if sub != nil && sub.strict && bad == "" && string(it.d[vs:ve]) != "null" {
			bad = string(key) + " must be an object"
		}
		if fi, want := m.fields.lookup(key); want && !b.text(fi, it.d[vs:ve]) && bad == "" {
			bad = string(key) + " must be a string"
		}
	}
}

// object decodes one event object raw (found at pos) with the field map m,
// then lets finish combine fields before the event is built.
func (d *Decoder) object(f Format, raw []byte, pos Position, m *objectMap, required *requiredFields, finish func(*builder)) (Event, *Error) {
	d.b.reset()
	end, bad, serr := d.b.collect(objIter{d: raw}, m)
	if serr != nil {
		return Event{}, syntaxErr(f, pos, raw, serr)
	}
	if rest := skipWS(raw, end); rest != len(raw) {
		return Event{}, newError(f, KindSyntax, pos, raw, fmt.Sprintf("syntax: unexpected data after the event at byte %d", rest))
	}
	if bad != "" {
		return Event{}, newError(f, KindWrongType, pos, raw, "wrong_type: "+bad)
	}
	if finish != nil {
		finish(&d.b)
	}
	return d.b.event(f, raw, pos, required)
}

// OneWelcome: {"metadata":{...},"payload":{...}}; see FORMATS.md.
var oneWelcomeEvent = &objectMap{nested: []nestedObject{{name: "metadata", strict: true, m: &objectMap{fields: fieldMap{{"eventId", fID}, {"type", fType}, {"tenantId", fTenant}, {"aggregateId", fKey}, {"category", fCategory}, {"occurredTime", fTime}}}}}}

var oneWelcomeRequired = &requiredFields{fID: "metadata.eventId", fType: "metadata.type", fTime: "metadata.occurredTime"}

// oneWelcomeFinish keys events without an aggregateId by their event id.
func oneWelcomeFinish(b *builder) { b.fallback(fKey, fID) }

// fulfillmenttools: {"id","eventName","payload":{"id",...},"created"}.
var fulfillmenttoolsEvent = &objectMap{
	fields: fieldMap{{"id", fID}, {"eventName", fType}, {"created", fTime}},
	nested: []nestedObject{{name: "payload", m: &objectMap{fields: fieldMap{{"id", fKey}}}}},
}

var fulfillmenttoolsRequired = &requiredFields{fID: "id", fType: "eventName", fTime: "created"}

func (d *Decoder) fulfillmenttools(raw []byte, pos Position) (Event, *Error) {
	ev, err := d.object(FormatFulfillmenttools, raw, pos, fulfillmenttoolsEvent, fulfillmenttoolsRequired,
		func(b *builder) { b.fallback(fKey, fID) })
	ev.Tenant = d.opts.Tenant
	return ev, err
}

// Infobip People export rows.
var infobipEvent = &objectMap{fields: fieldMap{{"id", fID}, {"eventId", fA}, {"definitionId", fType}, {"personId", fKey}, {"externalPersonId", fB}, {"timestamp", fTime}}}

var infobipRequired = &requiredFields{fType: "definitionId", fKey: "personId or externalPersonId", fTime: "timestamp"}

func (d *Decoder) infobip(raw []byte, pos Position) (Event, *Error) {
	ev, err := d.object(FormatInfobip, raw, pos, infobipEvent, infobipRequired, func(b *builder) {
		b.fallback(fID, fA)
		b.fallback(fKey, fB)
	})
	if err != nil {
		return ev, err
	}
	if ev.ID == "" {
		ev.ID = DerivedID(FormatInfobip, pos)
	}
	ev.Tenant = d.opts.Tenant
	return ev, nil
}

// DerivedID is a stable event id for rows that carry none: a name-based
// (version 5 style) UUID of the format, the export file's name and the row
// (line and index), so every read of the same export file yields the same
// ids — a live read, a directory replay, an S3 replay, or `consumer decode`
// however the path is spelled.
//
// The file's name is the base name of pos.Object (the part after the last
// '/') without a trailing ".gz": for Infobip that is
// "<requestId>-events-<startTime>-<endTime>.json", which names the export
// request and its range (seed 001). Folders, bucket prefixes and path
// spellings ("data/x", "./data/x", "/abs/data/x") do not count, and a file
// the user decompressed to .json keeps the ids of its .json.gz original
// (its rows are the same lines). A renamed file gets new ids.
func DerivedID(f Format, pos Position) string {
	h := sha1.New()
	h.Write([]byte(f))
	h.Write([]byte{0})
	h.Write([]byte(derivedIDName(pos.Object)))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, pos.Line, 10))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, int64(pos.Index), 10))
	s := h.Sum(nil)
	s[6] = s[6]&0x0f | 0x50
	s[8] = s[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", s[0:4], s[4:6], s[6:8], s[8:10], s[10:16])
}

// derivedIDName is the part of an object name that identifies an export
// file for DerivedID: its base name without a trailing ".gz".
func derivedIDName(object string) string {
	name := object[strings.LastIndexByte(object, '/')+1:]
	if n := len(name) - len(".gz"); n > 0 && strings.EqualFold(name[n:], ".gz") {
		name = name[:n]
	}
	return name
}

// Fluent Commerce orchestration and audit events. "name" (the event,
// ruleset, rule or action name users route on; may be null) becomes Name.
var fluentEvent = &objectMap{
	fields: fieldMap{{"id", fID}, {"name", fName}, {"type", fType}, {"accountId", fTenant}, {"category", fCategory}, {"generatedOn", fTime}},
	nested: []nestedObject{{name: "context", m: &objectMap{fields: fieldMap{{"rootEntityType", fA}, {"rootEntityId", fB}, {"rootEntityRef", fC}, {"entityType", fD}, {"entityId", fE}}}}},
}

var fluentRequired = &requiredFields{fID: "id", fType: "type", fTime: "generatedOn"}

// fluentFinish keys by root entity (type:id, else type:ref), then by entity,
// then by event id.
func fluentFinish(b *builder) {
	b.join(fKey, fA, fB, ':')
	if !b.has(fKey) {
		b.join(fKey, fA, fC, ':')
	}
	if !b.has(fKey) {
		b.join(fKey, fD, fE, ':')
	}
	b.fallback(fKey, fID)
}

func (d *Decoder) fluent(raw []byte, pos Position) (Event, *Error) {
	return d.object(FormatFluent, raw, pos, fluentEvent, fluentRequired, fluentFinish)
}

// Akeneo Event Platform logs.
var akeneoLogEvent = &objectMap{fields: fieldMap{{"log_id", fID}, {"operation", fType}, {"log_type", fCategory}, {"subscriber_id", fTenant}, {"subscription_id", fKey}, {"timestamp", fTime}}}

var akeneoLogRequired = &requiredFields{fID: "log_id", fCategory: "log_type", fTime: "timestamp"}

func (d *Decoder) akeneoLog(raw []byte, pos Position) (Event, *Error) {
	return d.object(FormatAkeneoLogs, raw, pos, akeneoLogEvent, akeneoLogRequired, func(b *builder) {
		b.fallback(fType, fCategory)
		b.fallback(fKey, fTenant)
		b.fallback(fKey, fID)
	})
}

// CloudEvents 1.0 as delivered by the Akeneo Event Platform.
var cloudEvent = &objectMap{fields: fieldMap{{"id", fID}, {"type", fType}, {"source", fA}, {"subject", fTenant}, {"time", fTime}}}

var cloudEventRequired = &requiredFields{fID: "id", fType: "type", fA: "source", fTime: "time"}

func (d *Decoder) cloudEvent(raw []byte, pos Position) (Event, *Error) {
	return d.object(FormatCloudEvents, raw, pos, cloudEvent, cloudEventRequired, func(b *builder) {
		b.fallback(fTenant, fA)
		b.fallback(fKey, fTenant)
	})
}
