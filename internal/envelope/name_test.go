package envelope

import (
	"fmt"
	"testing"
)

// TestEventName: Fluent's "name" (seed 002) becomes Event.Name; null means
// none; no other format has a name distinct from its type.
func TestEventName(t *testing.T) {
	const fluent = `{"id":"faac8262-a4dd-11ec-a568-2d00cfceb356","name":%s,"type":"ORCHESTRATION_AUDIT","accountId":"TEST","category":"ACTION","context":{"rootEntityType":"ORDER","rootEntityId":"2640"},"generatedOn":"2022-03-16T04:03:04.183+0000"}`
	tests := []struct {
		name string
		opts Options
		data string
		want string
	}{
		{"fluent name", Options{Format: FormatFluent}, fmt.Sprintf(fluent, `"Send Event"`), "Send Event"},
		{"fluent rule name, sniffed", Options{}, fmt.Sprintf(fluent, `"TEST.order.SelectProposedFulfilment"`), "TEST.order.SelectProposedFulfilment"},
		{"fluent null name", Options{Format: FormatFluent}, fmt.Sprintf(fluent, `null`), ""},
		{"fluent escaped name", Options{Format: FormatFluent}, fmt.Sprintf(fluent, `"Send\u0020Webhook"`), "Send Webhook"},
		{"cloudevents has none", Options{}, `{"specversion":"1.0","id":"1","source":"s","type":"com.akeneo.pim.v1.product.updated","time":"2024-11-25T16:40:00Z","name":"x"}`, ""},
		{"infobip has none", Options{Format: FormatInfobip}, `{"definitionId":"purchase","personId":"p","timestamp":"2024-05-01T10:00:00Z","name":"x"}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := decodeRecord(t, tc.opts, []byte(tc.data))
			if len(res.Errors) > 0 || len(res.Events) != 1 {
				t.Fatalf("errors %v", res.Errors)
			}
			if got := res.Events[0].Name; got != tc.want {
				t.Errorf("name = %q, want %q", got, tc.want)
			}
		})
	}
	res := decodeRecord(t, Options{Format: FormatFluent}, []byte(fmt.Sprintf(fluent, `{"x":1}`)))
	if len(res.Errors) != 1 || res.Errors[0].Kind != KindWrongType {
		t.Errorf("an object as name: want a wrong_type error, got %v", res.Errors)
	}
}
