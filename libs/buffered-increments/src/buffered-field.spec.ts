import { ObjectId } from 'mongodb';
import { decodeField, documentKeyOf, encodeField, OPERATOR } from './buffered-field';

describe('buffered field names', () => {
  it.each([
    ['user:"42" ünïcødé 🎵', 'plays on "día" 1:2'],
    ['a:b:c', 'x.y.z'],
    ["'", '"'],
    ['12:3', ':'],
  ])('round-trip id %j and path %j exactly', (id, path) => {
    const decoded = decodeField(encodeField(OPERATOR.incInteger, documentKeyOf(id), path));
    expect(decoded).toMatchObject({ operator: 'i', documentId: id, fieldPath: path });
  });

  it('keep the id type: string "5", number 5 and an ObjectId differ', () => {
    const objectId = new ObjectId();
    const keys = ['5', 5, objectId].map((id) => documentKeyOf(id));
    expect(new Set(keys).size).toBe(3);
    expect(decodeField(encodeField('s', keys[1], 'n')).documentId).toBe(5);
    expect(decodeField(encodeField('s', keys[2], 'n')).documentId).toEqual(objectId);
  });
});
